"""Fixtures of the service tests: one real, small model trained once per session."""

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from upvote.serve.deploy import free_port

ADMIN_TOKEN = "test-admin-token"
SMALL_TRAINING = ["--quick"]  # the model stage's small budget (seconds, real data)


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory) -> Path:
    """An UPVOTE_DATA_DIR holding a real model trained (small budget) on the shipped sample."""
    data_dir = tmp_path_factory.mktemp("trained")
    env = {**os.environ, "UPVOTE_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "upvote", "train", *SMALL_TRAINING],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (data_dir / "models" / "latest").exists()
    return data_dir


@pytest.fixture
def settings(trained_dir, tmp_path):
    from upvote.serve.config import ServeSettings

    return ServeSettings(data_dir=trained_dir, log_dir=tmp_path / "logs", admin_token=ADMIN_TOKEN)


@pytest.fixture
def client(settings):
    from fastapi.testclient import TestClient

    from upvote.serve.app import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def start_server(trained_dir):
    """Start real `upvote serve` processes (uvicorn, 127.0.0.1, a free port) on the trained model,
    logging to the folder given; each call waits for /health and gives (process, base URL).
    Whatever is still running at the end of the test is stopped."""
    started: list[subprocess.Popen] = []

    def start(log_dir: Path) -> tuple[subprocess.Popen, str]:
        port = free_port()
        env = {**os.environ, "UPVOTE_DATA_DIR": str(trained_dir), "UPVOTE_LOG_DIR": str(log_dir)}
        command = ["-m", "upvote", "serve", "--port", str(port), "--log-level", "warning"]
        server = subprocess.Popen([sys.executable, *command], env=env)
        started.append(server)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        return server, url

    yield start
    for server in started:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=10)


@pytest.fixture
def live_server(start_server, tmp_path):
    """A real `upvote serve` (uvicorn) on 127.0.0.1 and a free port; its base URL."""
    return start_server(tmp_path)[1]


@pytest.fixture
def corpus_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving tmp_path/site."""
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


# --- containers (buildah/podman); these tests are marked `containers` -------------------------

REPO = Path(__file__).resolve().parents[2]
CONTAINER_TOOLS = ["buildah", "podman", "debootstrap"]


class Podman:
    """podman with the flags this CI sandbox needs (no systemd, no user namespaces)."""

    cmd = ("podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs")
    run_args = (
        "--ulimit",
        "nofile=20000:20000",
        "--ulimit",
        "nproc=32768:32768",
        "--no-healthcheck",
    )

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*self.cmd, *args], capture_output=True, text=True, timeout=300)
        assert not check or done.returncode == 0, done.stderr[-2000:]
        return done


@pytest.fixture(scope="session")
def podman() -> Podman:
    missing = [tool for tool in CONTAINER_TOOLS if not shutil.which(tool)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install -y {' '.join(missing)})")
    return Podman()


def build(kind: str) -> str:
    """Build docker/<kind>.Dockerfile with docker/build.sh (buildah's layer cache: fast reruns)."""
    tag = f"localhost/upvote-{kind}:test"
    done = subprocess.run(
        [str(REPO / "docker" / "build.sh"), kind, tag], capture_output=True, text=True, timeout=1500
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return tag


@pytest.fixture(scope="session")
def api_image(podman) -> str:
    return build("api")


@pytest.fixture(scope="session")
def train_image(podman) -> str:
    return build("train")


def wait_healthy(url: str, timeout: float = 60) -> httpx.Response:
    """GET url/health until it answers 200 (fails the test after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(f"{url}/health", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url}/health not healthy after {timeout} s"
        time.sleep(0.3)


@pytest.fixture(scope="session")
def healthy():
    return wait_healthy
