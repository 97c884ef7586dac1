"""Blue/green deploy of the API image with podman, a registry and the file-switched proxy.

The usual "pull the new image, stop the old container, start the new one" leaves a gap and has
no way back. Here the new container starts *beside* the old one on a free port, must answer
``/health`` before the proxy on the public port is pointed at it, and only then is the old one
stopped (after a short drain). If the new one is not healthy in time it is removed and the old
one never stopped serving: an automatic rollback.

State lives in ``<data_dir>/deploy/<name>/``: ``upstream`` (read by the proxy), ``live`` (the
container now serving), ``proxy.pid`` and ``proxy.log``.

Container engine flags are settings (``DeploySettings`` in config.py) so the same code runs on a
laptop and in a locked-down CI sandbox: ``UPVOTE_PODMAN`` (default ``podman``) and
``UPVOTE_PODMAN_RUN_ARGS`` (extra ``podman run`` flags).
"""

import contextlib
import os
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from upvote.serve.config import DeploySettings
from upvote.serve.proxy import write_upstream


class DeployError(RuntimeError):
    """The deploy failed; the message says what, and what is serving now."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Deployment:
    name: str
    registry: str
    port: int
    data_dir: Path
    health_timeout: float = 60.0
    drain: float = 2.0
    podman: list[str] = field(default_factory=lambda: shlex.split(DeploySettings().podman))
    run_args: list[str] = field(
        default_factory=lambda: shlex.split(DeploySettings().podman_run_args)
    )

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "deploy" / self.name

    def _podman(self, *args: str, check: bool = True) -> str:
        done = subprocess.run([*self.podman, *args], capture_output=True, text=True)
        if check and done.returncode != 0:
            raise DeployError(f"podman {args[0]} failed: {done.stderr.strip()[-2000:]}")
        return done.stdout.strip()

    def live(self) -> str | None:
        """The container now serving traffic, if any."""
        path = self.state_dir / "live"
        return path.read_text().strip() if path.exists() else None

    def publish(self, image: str) -> str:
        """Push ``image`` to the registry and pull it back, as the serving host would."""
        remote = f"{self.registry}/{image.split('/', 1)[-1]}"
        self._podman("tag", image, remote)
        self._podman("push", "--tls-verify=false", remote)
        self._podman("untag", image, remote)  # the pull below must really come from the registry
        self._podman("pull", "--tls-verify=false", remote)
        return remote

    def start(self, image: str, port: int) -> str:
        container = f"{self.name}-{time.strftime('%Y%m%d%H%M%S')}-{port}"
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._podman(
            "run", "--detach", "--name", container, "--network", "host", *self.run_args,
            "--volume", f"{self.data_dir / 'models'}:/data/models:ro",
            "--volume", f"{logs}:/var/log/app:U",  # U: chown to the container user
            "--env", "UPVOTE_DATA_DIR=/data", "--env", "UPVOTE_HOST=127.0.0.1",
            "--env", f"UPVOTE_PORT={port}", image,
        )  # fmt: skip
        return container

    def wait_healthy(self, container: str, port: int) -> None:
        url = f"http://127.0.0.1:{port}/health"
        deadline = time.monotonic() + self.health_timeout
        while time.monotonic() < deadline:
            if _healthy(url):
                return
            state = self._podman("inspect", "--format", "{{.State.Status}}", container, check=False)
            if state not in ("running", "created", "configured"):
                break  # it exited: no point waiting for the timeout
            time.sleep(0.5)
        logs = subprocess.run(
            [*self.podman, "logs", "--tail", "20", container],
            capture_output=True, text=True,
        )  # fmt: skip
        logs = (logs.stdout + logs.stderr).strip()
        raise DeployError(f"{container} did not become healthy on {url}; last log lines:\n{logs}")

    def ensure_proxy(self) -> None:
        """Start the proxy on the public port unless it already runs."""
        pid_file = self.state_dir / "proxy.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), 0)
                return
            except (ProcessLookupError, ValueError):
                pass
        log = (self.state_dir / "proxy.log").open("ab")
        proxy = subprocess.Popen(
            [sys.executable, "-m", "upvote.serve.proxy", "--listen", str(self.port),
             "--upstream-file", str(self.state_dir / "upstream")],
            stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        pid_file.write_text(str(proxy.pid))
        deadline = time.monotonic() + 10
        while True:  # the switch only counts once the public port accepts connections
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError as error:
                if proxy.poll() is not None or time.monotonic() > deadline:
                    raise DeployError(f"proxy failed to listen on {self.port}: {error}") from error
                time.sleep(0.1)

    def stop_proxy(self) -> None:
        pid_file = self.state_dir / "proxy.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), 15)
            pid_file.unlink()

    def deploy(self, image: str) -> str:
        """Deploy ``image``; returns the new live container or raises DeployError after rollback."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        old = self.live()
        remote = self.publish(image)
        port = free_port()
        new = self.start(remote, port)
        try:
            self.wait_healthy(new, port)
        except DeployError as error:
            self._podman("rm", "--force", new, check=False)
            serving = f"still serving {old}" if old else "nothing was serving before"
            raise DeployError(f"{error}\nrolled back: removed {new}, {serving}") from error
        upstream = self.state_dir / "upstream"
        write_upstream(upstream, "127.0.0.1", port)
        self.ensure_proxy()
        (self.state_dir / "live").write_text(new)
        print(f"traffic on 127.0.0.1:{self.port} now goes to {new} ({remote})")
        if old:
            time.sleep(self.drain)  # connections opened just before the switch finish on old
            self._podman("stop", "--time", "10", old, check=False)  # SIGTERM: uvicorn drains
            self._podman("rm", "--force", old, check=False)
            print(f"stopped {old}")
        return new

    def teardown(self) -> None:
        """Stop everything this deployment runs (container and proxy)."""
        if live := self.live():
            self._podman("rm", "--force", live, check=False)
            (self.state_dir / "live").unlink()
        self.stop_proxy()
