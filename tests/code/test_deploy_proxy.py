"""The deploy's switching proxy: new connections follow the upstream file, atomically."""

import subprocess
import sys
import time

import httpx
import pytest

from upvote.serve.deploy import free_port
from upvote.serve.proxy import read_upstream, write_upstream


@pytest.fixture
def upstreams(tmp_path):
    """Two real HTTP servers that answer GET /who with their own name."""
    servers, ports = [], {}
    for name in ("blue", "green"):
        root = tmp_path / name
        root.mkdir()
        (root / "who").write_text(name)
        ports[name] = free_port()
        servers.append(subprocess.Popen(
            [sys.executable, "-m", "http.server", str(ports[name]), "--bind", "127.0.0.1",
             "--directory", str(root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
    yield ports
    for server in servers:
        server.terminate()
        server.wait(timeout=10)


def get(url: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=2).text
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_switching_the_upstream_file_moves_new_connections(upstreams, tmp_path):
    upstream = tmp_path / "upstream"
    write_upstream(upstream, "127.0.0.1", upstreams["blue"])
    assert read_upstream(upstream) == ("127.0.0.1", upstreams["blue"])
    port = free_port()
    proxy = subprocess.Popen(
        [sys.executable, "-m", "upvote.serve.proxy", "--listen", str(port),
         "--upstream-file", str(upstream)],
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/who"
        assert get(url) == "blue"
        write_upstream(upstream, "127.0.0.1", upstreams["green"])
        assert [get(url) for _ in range(5)] == ["green"] * 5
        write_upstream(upstream, "127.0.0.1", free_port())  # nobody listens there
        with pytest.raises(httpx.HTTPError):
            httpx.get(url, timeout=2)
        assert proxy.poll() is None  # a dead upstream does not take the proxy down
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
