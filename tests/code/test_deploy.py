"""Blue/green deploy for real: a local registry, podman containers, the switching proxy.

Deploys v1, then v2 while a client keeps calling the public port (no request may fail), then a
broken image, which must be rolled back automatically while v2 keeps serving.
"""

import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from upvote.serve.deploy import DeployError, Deployment, free_port

REGISTRY = Path("/usr/bin/docker-registry")

pytestmark = [pytest.mark.containers, pytest.mark.slow]


@pytest.fixture
def registry(tmp_path):
    """A real Docker registry (Debian's docker-registry) on 127.0.0.1 and a free port."""
    if not REGISTRY.exists():
        pytest.skip(f"needs {REGISTRY} (apt-get install -y docker-registry)")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'registry'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    log = (tmp_path / "registry.log").open("w")
    server = subprocess.Popen([str(REGISTRY), "serve", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "registry did not start"
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def derive(base: str, tag: str, line: str, tmp_path: Path) -> str:
    """A new image on top of ``base`` that differs by one Dockerfile line (seconds to build)."""
    context = tmp_path / tag
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {base}\n{line}\n")
    image = f"localhost/upvote-api:{tag}"
    subprocess.run(
        ["buildah", "bud", "--isolation", "chroot", "-t", image, str(context)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return image


class Traffic(threading.Thread):
    """Calls the public port continuously (a new connection each time) and records the answers."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop, self.releases, self.errors = url, threading.Event(), [], []

    def run(self) -> None:
        story = {"title": "Show HN: zero-downtime deploys", "author": "pg"}
        while not self.stop.is_set():
            try:
                with httpx.Client(timeout=5) as client:
                    release = client.get(f"{self.url}/health").json()["release"]
                    answer = client.post(f"{self.url}/how_many_upvotes", json=story)
                    answer.raise_for_status()
                self.releases.append(release)
            except Exception as error:
                self.errors.append(repr(error))
            time.sleep(0.02)


def test_deploy_v1_v2_then_a_broken_image_rolls_back(
    podman, api_image, trained_dir, registry, tmp_path, monkeypatch
):
    monkeypatch.setenv("UPVOTE_PODMAN", shlex.join(podman.cmd))
    monkeypatch.setenv("UPVOTE_PODMAN_RUN_ARGS", shlex.join(podman.run_args))
    data_dir = tmp_path / "data"
    shutil.copytree(trained_dir / "models", data_dir / "models")
    v1 = derive(api_image, "v1", "ENV UPVOTE_RELEASE=v1", tmp_path)
    v2 = derive(api_image, "v2", "ENV UPVOTE_RELEASE=v2", tmp_path)
    broken = derive(api_image, "broken", "ENV UPVOTE_MODEL_VERSION=no-such-version", tmp_path)

    deployment = Deployment(
        name=f"upvote-test-{free_port()}", registry=registry, port=free_port(),
        data_dir=data_dir, health_timeout=60, drain=1,
    )  # fmt: skip
    url = f"http://127.0.0.1:{deployment.port}"
    try:
        first = deployment.deploy(v1)
        assert httpx.get(f"{url}/health").json()["release"] == "v1"
        catalog = httpx.get(f"http://{registry}/v2/_catalog").json()["repositories"]
        assert "upvote-api" in catalog  # it went through the registry

        traffic = Traffic(url)
        traffic.start()
        time.sleep(1)
        second = deployment.deploy(v2)
        time.sleep(1)
        with pytest.raises(DeployError, match="rolled back"):
            deployment.deploy(broken)
        time.sleep(1)
        traffic.stop.set()
        traffic.join()

        assert traffic.errors == []  # no downtime during the switch nor the failed deploy
        assert traffic.releases[0] == "v1" and traffic.releases[-1] == "v2"
        assert deployment.live() == second
        running = podman("ps", "--format", "{{.Names}}").stdout.split()
        assert second in running and first not in running
        assert not [
            name for name in running if name not in (second,) and name.startswith(deployment.name)
        ]  # the broken container was removed
    finally:
        deployment.teardown()
        names = [v1, v2, broken] + [f"{registry}/{i.split('/', 1)[1]}" for i in (v1, v2, broken)]
        podman("rmi", "--force", *names, check=False)
