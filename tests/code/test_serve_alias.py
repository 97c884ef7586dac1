"""The service follows the champion: a promotion or rollback is served within a few polls, without
a restart or a reload; a broken champion is refused once and the old model keeps serving."""

import logging
import shutil
import time

import pytest
from fastapi.testclient import TestClient

from upvote.model.registry import load_model, promote, publish, rollback
from upvote.serve.app import create_app
from upvote.serve.config import ServeSettings

POLL = 0.05  # seconds between two reads of the alias's link
STORY = {"author": "pg", "title": "Show HN: A tiny word2vec in PyTorch", "timestamp": 1700000000}


@pytest.fixture
def registry(trained_dir, tmp_path):
    """A data dir whose registry has the trained model as v1 (the champion) and v2."""
    model = load_model(registry_dir=trained_dir / "models")
    for version in ("v1", "v2"):
        publish(model, version, tmp_path / "models")
    return tmp_path


def serve(data_dir, **settings) -> TestClient:
    options = {"alias_poll_seconds": POLL, **settings}
    return TestClient(create_app(ServeSettings(data_dir=data_dir, **options)))


def served(client: TestClient, version: str, polls: int = 40) -> bool:
    """Whether /version answers ``version`` within ``polls`` poll periods."""
    for _ in range(polls):
        if client.get("/version").json()["version"] == version:
            return True
        time.sleep(POLL)
    return False


def test_a_promotion_is_served_without_a_restart_and_a_rollback_too(registry):
    with serve(registry) as client:
        assert client.get("/version").json() == {"version": "v1"}
        promote("v2", "test", registry / "models")
        assert served(client, "v2")
        assert client.get("/health").json()["version"] == "v2"
        predicted = client.post("/predict", json={"stories": [{"title": "Rust 1.80"}]})
        assert predicted.json()["version"] == "v2"
        rollback("test", registry / "models")
        assert served(client, "v1")


def test_a_broken_champion_is_refused_once_and_the_old_model_keeps_serving(registry, caplog):
    models = registry / "models"
    shutil.copytree(models / "v2", models / "broken")
    for file in (models / "broken").iterdir():
        if file.is_file():
            file.write_bytes(b"\0garbage")
    with serve(registry) as client, caplog.at_level(logging.ERROR, "upvote.serve.state"):
        promote("broken", "test", models)
        time.sleep(20 * POLL)
        assert client.get("/version").json() == {"version": "v1"}
        assert client.post("/how_many_upvotes", json=STORY).status_code == 200
        refusals = [r for r in caplog.records if "broken" in r.getMessage()]
        assert len(refusals) == 1  # not retried at every poll
        promote("v2", "fixed", models)  # the next move of the link is followed again
        assert served(client, "v2")


def test_a_pinned_version_is_not_moved_by_promotions(registry):
    with serve(registry, model_version="v1") as client:
        promote("v2", "test", registry / "models")
        assert not served(client, "v2", polls=10)


def test_polling_can_be_turned_off(registry):
    with serve(registry, alias_poll_seconds=0) as client:
        promote("v2", "test", registry / "models")
        assert not served(client, "v2", polls=10)
        assert client.app.state.holder.load()[1] == "v2"  # a reload still follows the alias
