"""compose.yaml's "embeddings" profile as podman-compose resolves it: the job database, the
one-shot init, the jobs API and two workers share one database URL and one artifacts volume.
(The configuration; tests/code/test_compose.py brings the profile up.)"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
JOBS = ["jobs-db", "jobs-init", "jobs-api", "jobs-worker-1", "jobs-worker-2"]


def config(*args: str, **env: str) -> dict:
    if importlib.util.find_spec("podman_compose") is None:
        pytest.skip("needs podman-compose (pip install podman-compose)")
    done = subprocess.run(
        [sys.executable, "-m", "podman_compose", "-f", str(REPO / "compose.yaml"), *args,
         "config"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return yaml.safe_load(done.stdout)


def test_embeddings_profile_wires_database_artifacts_and_workers():
    services = config("--profile", "embeddings", UPVOTE_JOBS_PORT="9123",
                      UPVOTE_JOBS_DB_PASSWORD="s3cret")["services"]  # fmt: skip
    assert set(JOBS) <= set(services)
    dsn = "postgresql://upvote:s3cret@jobs-db:5432/jobs"
    assert services["jobs-db"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"
    for name in JOBS[1:]:
        env = services[name]["environment"]
        assert env["UPVOTE_JOBS_DATABASE_URL"] == dsn, name
    for name in JOBS[2:]:  # the API serves what the workers write: one volume
        assert "jobs:/data" in services[name]["volumes"], name
        assert services[name]["environment"]["UPVOTE_JOBS_ARTIFACTS_DIR"] == "/data/jobs"
    assert services["jobs-init"]["command"] == ["upvote", "jobs", "init"]
    for worker in JOBS[3:]:
        assert services[worker]["command"] == ["upvote", "jobs", "worker"]
        assert services[worker]["depends_on"]["jobs-init"]["condition"] == (
            "service_completed_successfully"
        )
    api = services["jobs-api"]
    assert api["command"] == ["upvote", "jobs", "api", "--host", "0.0.0.0", "--port", "8001"]
    assert api["ports"] == ["9123:8001"]
    assert services["jobs-db"]["volumes"] != services["db"]["volumes"]  # its own data


def test_embeddings_profile_is_off_by_default():
    services = config()["services"]
    assert not set(JOBS) & set(services)
