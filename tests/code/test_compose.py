"""compose.yaml for real (podman-compose): PostgreSQL -> seed -> `data pull` -> `train` -> api.

Uses the images of the other container tests (conftest's api_image/train_image, built by
docker/build.sh; cached layers make this fast) and the postgres:16 stand-in built from
docker/postgres-standin/ (Docker Hub is unreachable here). Two podman 4.3 limits shape the
steps: podman-compose ignores `condition: service_healthy` before podman 4.6 (the job's seed
script waits for the server itself), and `podman start` of a container created with
`--requires` on an exited one-shot job fails, so the api is brought up with `--no-deps` after
the job has exited 0 (the order `service_completed_successfully` asks for).
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from upvote.data import load_stories
from upvote.data.dataset import SAMPLE_DIR
from upvote.serve.deploy import free_port

pytestmark = [pytest.mark.containers, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
POSTGRES_STANDIN = "localhost/postgres-standin:16"
# Podman.run_args without --no-healthcheck: podman refuses it beside compose's healthcheck.
RUN_ARGS = "--ulimit nofile=20000:20000 --ulimit nproc=32768:32768"


class Compose:
    """podman-compose on compose.yaml as one project, with the flags of conftest's `podman`."""

    def __init__(self, podman, env: dict[str, str]):
        self.podman = podman
        self.project = f"upvote-compose-{os.getpid()}"
        self.env = env

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [
                sys.executable, "-m", "podman_compose", "-p", self.project,
                f"--podman-args={' '.join(self.podman.cmd[1:])}",
                f"--podman-run-args={RUN_ARGS}", *args,
            ],
            cwd=REPO, env=self.env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert not check or done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done

    def container(self, service: str) -> str:
        names = self.podman(
            "ps", "--all", "--format", "{{.Names}}",
            "--filter", f"label=com.docker.compose.project={self.project}",
            "--filter", f"label=com.docker.compose.service={service}",
        ).stdout.split()  # fmt: skip
        assert len(names) == 1, names
        return names[0]

    def wait(self, service: str) -> tuple[int, str]:
        """Wait for the service's container to exit: (exit code, its output)."""
        name = self.container(service)
        code = int(self.podman("wait", name).stdout.strip())
        logs = self.podman("logs", name)
        return code, logs.stdout + logs.stderr


@pytest.fixture
def compose(podman, api_image, train_image) -> Compose:
    if importlib.util.find_spec("podman_compose") is None:
        pytest.skip("needs podman-compose (pip install podman-compose)")
    done = subprocess.run(
        [
            "buildah", "bud", "--isolation", "chroot", "--layers", "--format", "docker",
            "-t", POSTGRES_STANDIN, "-f", "docker/postgres-standin/Dockerfile",
            "docker/postgres-standin",
        ],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    env = {
        **os.environ,
        "POSTGRES_IMAGE": POSTGRES_STANDIN,
        "UPVOTE_TRAIN_IMAGE": train_image,
        "UPVOTE_API_IMAGE": api_image,
        "UPVOTE_TRAIN_ARGS": "--quick",
        "UPVOTE_PORT": str(free_port()),
    }
    compose = Compose(podman, env)
    try:
        yield compose
    finally:
        compose("down", "--volumes", check=False)


def test_job_pulls_stories_from_postgresql_trains_and_api_serves_the_model(compose, healthy):
    compose("up", "--detach", "db", "train")
    code, logs = compose.wait("train")
    assert code == 0, logs[-3000:]

    # the job seeded the empty table with the sample's unfiltered stories, then pulled them all
    sample = load_stories(SAMPLE_DIR / "stories.parquet")
    expected = int(((sample["selection"] == "unfiltered") & sample["id"].notna()).sum())
    assert f"seeded hacker_news.items with {expected} unfiltered stories" in logs
    in_db = compose.podman(
        "exec", compose.container("db"),
        "psql", "-U", "upvote", "-d", "upvote", "-Atc", "SELECT count(*) FROM hacker_news.items",
    ).stdout  # fmt: skip
    assert int(in_db) == expected
    kept = re.search(r"rows kept\s+([\d,]+)", logs)
    assert kept and int(kept[1].replace(",", "")) == expected, logs[-3000:]
    version = re.search(r"model (\S+) -> /data/models/", logs)
    assert version, logs[-3000:]

    compose("up", "--detach", "--no-deps", "api")
    url = f"http://127.0.0.1:{compose.env['UPVOTE_PORT']}"
    assert healthy(url, timeout=90).json()["version"] == version[1]
    story = {"author": "pg", "title": "Show HN: word2vec in PyTorch", "timestamp": 1.7e9}
    response = httpx.post(f"{url}/how_many_upvotes", json=story, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["upvotes"] >= 0


def test_job_fails_clearly_without_a_database(compose):
    compose.env["UPVOTE_DB_WAIT"] = "2"
    compose("up", "--detach", "--no-deps", "train")  # no db service: `db` does not resolve
    code, logs = compose.wait("train")
    assert code == 1, logs[-3000:]
    assert "Error: PostgreSQL not reachable after 2 s" in logs
    assert "Traceback" not in logs
