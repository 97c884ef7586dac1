"""Fixtures of the service tests: one real, small model trained once per session."""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from upvote.serve.app import create_app
from upvote.serve.config import ServeSettings

ADMIN_TOKEN = "test-admin-token"
SMALL_TRAINING = ["--budget", "small"]  # the model stage's quick training (seconds, real data)


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
def settings(trained_dir, tmp_path) -> ServeSettings:
    return ServeSettings(data_dir=trained_dir, log_dir=tmp_path / "logs", admin_token=ADMIN_TOKEN)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def live_server(trained_dir, tmp_path):
    """A real `upvote serve` (uvicorn) on 127.0.0.1 and a free port; yields its base URL."""
    port = free_port()
    env = {**os.environ, "UPVOTE_DATA_DIR": str(trained_dir), "UPVOTE_LOG_DIR": str(tmp_path)}
    server = subprocess.Popen(
        [sys.executable, "-m", "upvote", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, "upvote serve exited during start-up"
            time.sleep(0.2)
        else:
            pytest.fail("upvote serve did not become healthy in 60 s")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


# --- containers (buildah/podman); these tests are marked `containers` -------------------------

REPO = Path(__file__).resolve().parents[2]
# Flags this CI sandbox needs (no systemd, no user namespaces); harmless on a normal host.
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]
PODMAN_RUN_ARGS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]
CONTAINER_TOOLS = ["buildah", "podman", "debootstrap"]


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=300)
    assert not check or done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.fixture(scope="session")
def api_image() -> str:
    """The API image built from docker/api.Dockerfile (buildah layer cache makes reruns fast)."""
    missing = [tool for tool in CONTAINER_TOOLS if not shutil.which(tool)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install -y {' '.join(missing)})")
    tag = "localhost/upvote-api:test"
    done = subprocess.run(
        [str(REPO / "docker" / "build.sh"), "api", tag],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return tag


def wait_healthy(url: str, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(f"{url}/health", timeout=2)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url}/health not healthy after {timeout} s"
        time.sleep(0.5)
