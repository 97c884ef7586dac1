"""Schemathesis against the real app: every operation of /openapi.json, generated (valid and
invalid) requests, with and without the admin token. Checks: no 5xx, every answer's status is
one the spec lists for the operation, and its body matches the schema listed for that status.

Examples per operation are few (``EXAMPLES``) so the file runs in about a minute on 2 cores; run
it with ``UPVOTE_SCHEMATHESIS_EXAMPLES=500`` for a deeper search.
"""

import os
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from upvote.serve.app import create_app
from upvote.serve.config import ServeSettings
from upvote.serve.predlog import PredictionLog
from upvote.serve.state import ModelHolder

ADMIN_TOKEN = "schemathesis-admin-token"
EXAMPLES = int(os.environ.get("UPVOTE_SCHEMATHESIS_EXAMPLES", "20"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same examples on every run: a failure reproduces
)


# The spec does not depend on the model, so the schema is loaded at import (schemathesis'
# lazy ``from_fixture`` does not work with pytest 9); the fixture below gives the app the model.
UNTRAINED = Path(tempfile.gettempdir()) / "upvote-schemathesis-no-data"
APP = create_app(ServeSettings(data_dir=UNTRAINED, admin_token=ADMIN_TOKEN))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def trained_app(trained_dir, tmp_path_factory):
    settings_ = ServeSettings(
        data_dir=trained_dir,
        log_dir=tmp_path_factory.mktemp("schemathesis-logs"),
        admin_token=ADMIN_TOKEN,
    )
    state = APP.state
    state.settings = settings_
    state.holder = ModelHolder(settings_.models_dir)
    state.holder.load()  # no lifespan under schemathesis' ASGI client
    state.predlog = PredictionLog(settings_.logs_dir, settings_.log_max_bytes, 2)
    yield
    state.predlog.close()


@schema.parametrize()
@HYPOTHESIS
def test_anonymous_callers(case):
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
@HYPOTHESIS
def test_the_admin(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, checks=CHECKS)
