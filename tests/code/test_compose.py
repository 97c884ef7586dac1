"""compose.yaml for real (podman-compose): PostgreSQL -> seed -> `data pull` -> `train` -> api,
then the monitoring profile (Prometheus scrapes the api) and the retrain profile (a new week is
inserted; the retrain service pulls it, trains and decides).

Uses the images of the other container tests (conftest's api_image/train_image, built by
docker/build.sh; cached layers make this fast) and the postgres:16 and prom/prometheus stand-ins
built from docker/postgres-standin/ and docker/prometheus-standin/ (Docker Hub is unreachable
here; Grafana has no such stand-in: its files are checked in test_monitoring_stack.py). Two
podman 4.3 limits shape the steps: podman-compose ignores `condition: service_healthy` before
podman 4.6 (the job's seed script waits for the server itself), and `podman start` of a
container created with `--requires` on an exited one-shot job fails, so the api is brought up
with `--no-deps` after the job has exited 0 (the order `service_completed_successfully` asks for).
"""

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from upvote.data import load_stories
from upvote.data.dataset import SAMPLE_DIR
from upvote.serve.deploy import free_port

pytestmark = [pytest.mark.containers, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
POSTGRES_STANDIN = "localhost/postgres-standin:16"
PROMETHEUS_STANDIN = "localhost/prometheus-standin:2"
NEW_WEEK = pd.Timestamp("2016-09-13")  # the seed stops here; the retrain pulls the week after
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

    def logs_until(self, service: str, text: str, timeout: float) -> str:
        """The output of a long-running service once it printed ``text``."""
        name, deadline = self.container(service), time.monotonic() + timeout
        while time.monotonic() < deadline:
            logs = self.podman("logs", name)
            if text in logs.stdout + logs.stderr:
                return logs.stdout + logs.stderr
            time.sleep(2)
        raise AssertionError(f"{service} did not print {text!r}: {logs.stdout[-2000:]}")

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
    for image, folder in [
        (POSTGRES_STANDIN, "postgres-standin"),
        (PROMETHEUS_STANDIN, "prometheus-standin"),
    ]:
        done = subprocess.run(
            [
                "buildah", "bud", "--isolation", "chroot", "--layers", "--format", "docker",
                "-t", image, "-f", f"docker/{folder}/Dockerfile", f"docker/{folder}",
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
        "PROMETHEUS_IMAGE": PROMETHEUS_STANDIN,
        "PROMETHEUS_PORT": str(free_port()),
        "UPVOTE_RETRAIN_ARGS": "--quick",
    }
    compose = Compose(podman, env)
    try:
        yield compose
    finally:
        profiles = ("monitoring", "retrain", "embeddings")
        compose(*(f"--profile={p}" for p in profiles), "down", "--volumes", check=False)


def test_the_whole_system_pulls_trains_serves_is_scraped_and_retrains(compose, healthy):
    """db -> seed (the week before NEW_WEEK) -> pull -> train -> api; Prometheus (monitoring
    profile) scrapes the api; the next week is inserted and the retrain service (retrain profile)
    pulls exactly those stories, trains a challenger and records its decision."""
    compose.env["UPVOTE_SEED_UNTIL"] = NEW_WEEK.date().isoformat()
    compose("up", "--detach", "db", "train")
    code, logs = compose.wait("train")
    assert code == 0, logs[-3000:]

    # the job seeded the empty table with the sample's unfiltered stories, then pulled them all
    sample = load_stories(SAMPLE_DIR / "stories.parquet")
    unfiltered = sample[(sample["selection"] == "unfiltered") & sample["id"].notna()]
    expected = int((unfiltered["time"] < NEW_WEEK).sum())
    assert f"seeded hacker_news.items with {expected} unfiltered stories" in logs
    assert stories_in_db(compose) == expected
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

    # monitoring profile: Prometheus (the stand-in image) scrapes the api's /metrics
    compose("--profile", "monitoring", "up", "--detach", "--no-deps", "prometheus")
    prometheus = f"http://127.0.0.1:{compose.env['PROMETHEUS_PORT']}"
    requests = scraped(prometheus, 'sum(upvote_http_requests_total{endpoint="/how_many_upvotes"})')
    assert requests >= 1
    targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]
    assert [t["health"] for t in targets["activeTargets"]] == ["up"]
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    assert any(rule["name"].startswith("Upvote") for g in rules for rule in g["rules"])

    # the next week arrives; the retrain service pulls it, trains and decides
    compose("run", "--rm", "--no-deps", "train", "python", "/opt/upvote/seed_sample.py",
            "--since", NEW_WEEK.date().isoformat())  # fmt: skip
    assert stories_in_db(compose) == len(unfiltered)
    compose("--profile", "retrain", "up", "--detach", "--no-deps", "retrain")
    logs = compose.logs_until("retrain", "next retrain in", timeout=600)
    assert f"pulled {len(unfiltered) - expected:,} new stories" in logs, logs[-3000:]
    decision = re.search(r"decision: (promoted|kept): ", logs)
    assert decision, logs[-3000:]
    assert "Traceback" not in logs
    if decision[1] == "promoted":  # the api switches to the new champion without a restart
        challenger = re.search(r"champion: (\S+) \(was ", logs)[1]
        assert wait_for_version(url, challenger), f"the api still serves {version[1]}"


def test_the_embeddings_profile_trains_a_job_uploaded_to_its_api(compose):
    """jobs-db -> jobs-init -> jobs-api + two workers sharing one volume: a token made in the api
    container, a corpus uploaded, trained by a worker, its vectors served by the api."""
    compose.env["UPVOTE_JOBS_PORT"] = str(free_port())
    profile = "--profile=embeddings"
    compose(profile, "up", "--detach", "--no-deps", "jobs-db")
    db = compose.container("jobs-db")
    deadline = time.monotonic() + 90  # podman-compose < 1.1 on podman 4.3 ignores service_healthy
    while compose.podman("exec", db, "pg_isready", "-U", "upvote", "-d", "jobs", check=False
                         ).returncode != 0:  # fmt: skip
        assert time.monotonic() < deadline, "the job database did not start"
        time.sleep(1)
    compose(profile, "up", "--detach", "--no-deps", "jobs-init")
    code, logs = compose.wait("jobs-init")
    assert code == 0, logs[-3000:]
    compose(profile, "up", "--detach", "--no-deps", "jobs-api", "jobs-worker-1", "jobs-worker-2")
    api = compose.container("jobs-api")
    token = compose.podman("exec", api, "upvote", "jobs", "token", "create", "compose").stdout
    headers = {"Authorization": f"Bearer {token.split()[-1]}"}
    url = f"http://127.0.0.1:{compose.env['UPVOTE_JOBS_PORT']}/v1/embeddings/jobs"
    # 7 topics x 13 words, letters only (the word tokenizer splits digits off)
    lines = [
        " ".join(f"t{chr(97 + t % 7)}w{chr(97 + (t * 7 + i) % 13)}" for i in range(20))
        for t in range(3000)
    ]
    deadline = time.monotonic() + 60
    while True:  # the api answers once uvicorn is up
        try:
            created = httpx.post(url, headers=headers, timeout=10,
                                 files={"file": ("c.txt", "\n".join(lines).encode())},
                                 data={"options": '{"dim": 8, "epochs": 2}'})  # fmt: skip
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, compose.podman("logs", api).stderr[-2000:]
            time.sleep(1)
    assert created.status_code == 202, created.text
    job_url = f"{url}/{created.json()['id']}"
    deadline = time.monotonic() + 180
    while (job := httpx.get(job_url, headers=headers, timeout=10).json())["state"] not in (
        "succeeded", "failed"
    ):  # fmt: skip
        assert time.monotonic() < deadline, job
        time.sleep(1)
    assert job["state"] == "succeeded", job
    assert job["worker"], job  # a worker container's host:pid
    vectors = httpx.get(f"{job_url}/vectors", headers=headers, params={"format": "txt"})
    assert vectors.status_code == 200 and vectors.text.splitlines()[0] == "91 8"
    for worker in ("jobs-worker-1", "jobs-worker-2"):
        state = compose.podman("inspect", "--format", "{{.State.Status}}",
                               compose.container(worker)).stdout.strip()  # fmt: skip
        assert state == "running", worker


def stories_in_db(compose: Compose) -> int:
    sql = "SELECT count(*) FROM hacker_news.items"
    db = compose.container("db")
    return int(
        compose.podman("exec", db, "psql", "-U", "upvote", "-d", "upvote", "-Atc", sql).stdout
    )


def scraped(prometheus: str, query: str, timeout: float = 90) -> float:
    """The value of an instant query once Prometheus is ready and has a sample (scrapes every
    15 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=5)
        except httpx.HTTPError:
            answer = None  # Prometheus not listening yet
        # until its storage is open Prometheus answers 503 with a plain-text body: still starting
        if answer is not None and answer.status_code == 200:
            result = answer.json()["data"]["result"]
            if result:
                return float(result[0]["value"][1])
        time.sleep(2)
    raise AssertionError(f"Prometheus had no sample of {query} after {timeout:.0f} s")


def wait_for_version(url: str, version: str, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/version", timeout=5).json()["version"] == version:
            return True
        time.sleep(1)
    return False


def test_job_fails_clearly_without_a_database(compose):
    compose.env["UPVOTE_DB_WAIT"] = "2"
    compose("up", "--detach", "--no-deps", "train")  # no db service: `db` does not resolve
    code, logs = compose.wait("train")
    assert code == 1, logs[-3000:]
    assert "Error: PostgreSQL not reachable after 2 s" in logs
    assert "Traceback" not in logs
