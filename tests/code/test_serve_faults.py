"""Faults of the process itself: the server killed with SIGKILL in the middle of a load.

What must hold afterwards: the prediction log is readable (a line torn by the kill is skipped and
counted, never a 500), it holds no more records than predictions were answered, at most the last
``FLUSH_SECONDS`` of records are lost, and a new server on the same folders serves and logs at once.
"""

import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx

from upvote.serve.predlog import FLUSH_SECONDS

STORY = {"author": "pg", "title": "Show HN: a tiny database", "timestamp": "2016-09-20T12:00:00Z"}


def hammer(url: str, stop: threading.Event, answered: list[float]) -> None:
    """Predict back to back until ``stop``; the time of each 200 goes into ``answered``."""
    with httpx.Client(timeout=5) as client:
        while not stop.is_set():
            try:
                response = client.post(f"{url}/how_many_upvotes", json=STORY)
            except httpx.HTTPError:  # the server is gone
                return
            assert response.status_code == 200, response.text
            answered.append(time.monotonic())


def logged(log_dir: Path) -> tuple[int, int]:
    """(lines, lines that parse as JSON) in the prediction log files."""
    lines = [ln for p in log_dir.glob("predictions-*") for ln in p.read_bytes().splitlines()]
    records = 0
    for line in lines:
        with contextlib.suppress(ValueError):
            records += isinstance(json.loads(line), dict)
    return len(lines), records


def test_a_server_killed_under_load_leaves_a_readable_log_and_restarts(start_server, tmp_path):
    server, url = start_server(tmp_path)
    stop, answered = threading.Event(), []
    threads = [threading.Thread(target=hammer, args=(url, stop, answered)) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(2.5 * FLUSH_SECONDS)  # a few flushes of the log happen under load
        killed_at = time.monotonic()
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        if server.poll() is None:
            server.kill()
    assert server.returncode == -signal.SIGKILL
    flushed_before = sum(1 for t in answered if t < killed_at - 2 * FLUSH_SECONDS)
    assert flushed_before > 0, "no prediction was answered before the kill"

    server, url = start_server(tmp_path)  # the same folders; stopped by the fixture
    logs = httpx.get(f"{url}/logs", params={"limit": 1000}, timeout=10)
    assert logs.status_code == 200, logs.text
    assert all(r["Input"]["title"] == STORY["title"] for r in logs.json()["logs"])
    lines, records = logged(tmp_path)
    # nothing invented, what was flushed before the kill survived it, at most one line torn
    assert flushed_before <= records <= len(answered)
    assert lines - records <= 1
    again = httpx.post(f"{url}/how_many_upvotes", json=STORY, timeout=10)
    assert again.status_code == 200 and again.json()["upvotes"] >= 0
    health = httpx.get(f"{url}/health", timeout=10).json()
    assert health["status"] == "ok", health
    deadline = time.monotonic() + 10 * FLUSH_SECONDS
    while logged(tmp_path)[1] <= records:
        assert time.monotonic() < deadline, "the new server's prediction was never logged"
        time.sleep(0.1)
