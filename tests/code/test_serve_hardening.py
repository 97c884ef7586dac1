"""Hostile and broken input never crashes, leaks or stalls the service (docs/security.md).

Each test here failed on the service before the hardening: a 500, a stall, a leak or a crash.
The app is the real one, on the small model trained once per session (conftest.py); a few tests
run a real `upvote serve` (uvicorn) on 127.0.0.1.
"""

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import Request
from fastapi.testclient import TestClient

import upvote.serve.predlog as predlog_module
from upvote.serve.app import create_app
from upvote.serve.config import ServeSettings
from upvote.serve.deploy import free_port

ADMIN_TOKEN = "test-admin-token"  # conftest.py's
STORY = {"author": "pg", "title": "Show HN: A tiny word2vec in PyTorch", "timestamp": 1700000000}
JSON = {"Content-Type": "application/json"}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
POSTS = ["/how_many_upvotes", "/predict", "/explain"]


@contextlib.contextmanager
def serving(trained_dir: Path, log_dir: Path, **env: str):
    """A real `upvote serve` on 127.0.0.1 with extra UPVOTE_* settings; yields (url, port)."""
    port = free_port()
    environ = {
        **os.environ,
        "UPVOTE_DATA_DIR": str(trained_dir),
        "UPVOTE_LOG_DIR": str(log_dir),
        **{f"UPVOTE_{k.upper()}": v for k, v in env.items()},
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "upvote", "serve", "--port", str(port), "--log-level", "warning"],
        env=environ,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: healthy(url), timeout=60)
        yield url, port
    finally:
        server.terminate()
        server.wait(timeout=10)


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# --- 1. request bodies are capped -------------------------------------------------------------


def test_an_oversized_body_is_a_413_naming_the_limit(client, settings):
    limit = settings.max_body_bytes
    big = {"stories": [{"title": "x" * 250, "by": "y" * 1000} for _ in range(1000)]}
    assert len(json.dumps(big)) > limit
    for path in POSTS:
        response = client.post(path, json=big)
        assert response.status_code == 413, (path, response.status_code)
        assert str(limit) in response.json()["detail"]


def test_a_chunked_body_is_counted_as_it_arrives(client, settings):
    def chunks():  # no Content-Length: Transfer-Encoding: chunked
        yield b'{"stories": ['
        for _ in range(settings.max_body_bytes // 1000 + 10):
            yield b'{"title": "' + b"x" * 980 + b'"},'
        yield b'{"title": "x"}]}'

    response = client.post("/predict", content=chunks(), headers=JSON)
    assert response.status_code == 413
    small = client.post("/how_many_upvotes", content=iter([json.dumps(STORY).encode()]),
                        headers=JSON)  # fmt: skip
    assert small.status_code == 200, small.text


def test_a_full_batch_fits_the_body_limit(client, settings):
    story = {"title": "Show HN: " + "word " * 50, "url": "https://example.com/" + "a" * 100,
             "by": "someone", "time": "2024-05-01T12:00:00Z"}  # fmt: skip
    batch = {"stories": [story] * settings.max_batch}
    assert len(json.dumps(batch)) < settings.max_body_bytes
    assert client.post("/predict", json=batch).status_code == 200


def test_uvicorn_answers_a_huge_declared_body_at_once(trained_dir, tmp_path):
    """A 100 MB Content-Length is refused from the headers, before any of it is read."""
    with (
        serving(trained_dir, tmp_path) as (url, port),
        socket.create_connection(("127.0.0.1", port), timeout=10) as sock,
    ):
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000000\r\n\r\n{\"stories\": [")  # fmt: skip
        start = time.monotonic()
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert time.monotonic() - start < 5
        assert httpx.post(f"{url}/how_many_upvotes", json=STORY).status_code == 200


# --- 2. hostile JSON is a 422, never a 500; the token comes before the body -------------------

HOSTILE = [
    (b'{"title": "ok", "timestamp": NaN}', "timestamp"),
    (b'{"title": Infinity}', "title"),
    (b'{"title": "ok", "extra": 1e400}', "extra"),
    (b'{"title": "ok", "author": -Infinity}', "author"),
    (b'{"title": "\xff\xfe not utf-8"}', None),
    (b'{"title": "lone \\ud800 surrogate"}', None),
    (b"\xff\xfe\x00", None),
    (b"{not json", None),
    (b'{"title": "' + b"\\u0000" * 3000 + b'"}', "title"),
    (b'{"title": "ok", "timestamp": ' + b"9" * 5000 + b"}", None),  # out of range
]


@pytest.mark.parametrize(("raw", "field"), HOSTILE)
@pytest.mark.parametrize("path", POSTS)
def test_hostile_json_is_a_422_naming_the_field(client, caplog, path, raw, field):
    if path != "/how_many_upvotes" and field is not None:  # same field, in each route's shape
        raw = raw.replace(b'"author"', b'"by"').replace(b'"timestamp"', b'"time"')
        field = {"author": "by", "timestamp": "time"}.get(field, field)
        if path == "/predict":
            raw = b'{"stories": [' + raw + b"]}"
    with caplog.at_level(logging.WARNING):
        response = client.post(path, content=raw, headers=JSON)
    assert response.status_code == 422, (response.status_code, response.text[:300])
    detail = response.json()["detail"]
    assert detail and all(error["loc"][0] == "body" for error in detail)
    if field is not None:
        assert field in [str(error["loc"][-1]) for error in detail], detail
    assert len(response.content) < 5_000
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize(("raw", "_"), HOSTILE)
def test_reload_checks_the_token_before_reading_the_body(client, raw, _):
    assert client.post("/admin/reload", content=raw, headers=JSON).status_code == 401
    with_token = client.post("/admin/reload", content=raw, headers={**JSON, **AUTH})
    assert with_token.status_code == 422, with_token.text[:300]


def test_bad_json_is_a_422_on_every_route(client):
    for path in [*POSTS, "/admin/reload"]:
        for raw in (b"\xff", b"{not json", b"[1, 2"):
            response = client.post(path, content=raw, headers={**JSON, **AUTH})
            assert response.status_code == 422, (path, raw, response.status_code)


def test_an_unexpected_error_stays_in_the_app_and_its_message_out_of_the_log(settings, caplog):
    """Starlette re-raises after its 500: uvicorn then logged the error again (message and all)
    and closed the keep-alive connection. The 500 is logged once, by type and stack only."""
    app = create_app(settings)

    @app.post("/boom")
    async def boom(request: Request) -> None:
        raise RuntimeError((await request.body()).decode())

    with TestClient(app) as client, caplog.at_level(logging.ERROR):  # raises what escapes
        response = client.post("/boom", content=b"PASSWORD=hunter2")
    assert response.status_code == 500 and response.json() == {"detail": "internal server error"}
    assert "RuntimeError" in caplog.text and "boom" in caplog.text
    assert "hunter2" not in caplog.text


def test_the_422_renderer_cannot_fail():
    from upvote.serve.app import json_safe

    hostile = {"nan": float("nan"), "inf": float("-inf"), "big": 10**5000,
               "bytes": b"\xff\x00", "surrogate": "a\ud800b", "object": object(),
               "deep": [[[[[[[[[[1]]]]]]]]]]}  # fmt: skip
    text = json.dumps(json_safe(hostile), allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    assert "nan" in text and "integer of" in text


# --- 3. /logs is bounded and does not hold the predictions' lock ------------------------------


def test_logs_limit_is_capped(client):
    assert client.get("/logs", params={"limit": 1000}).status_code == 200
    assert client.get("/logs", params={"limit": 1001}).status_code == 422
    assert client.get("/logs", params={"limit": 10_000}).status_code == 422


def test_reading_the_log_does_not_hold_the_lock_predictions_need(tmp_path):
    log = predlog_module.PredictionLog(tmp_path, max_bytes=2_000, backups=3)
    for i in range(100):
        log.append("v1", {"title": f"story {i}"}, float(i), 1.0)
    log.flush()  # written (and rotated) under the lock; what follows only reads
    held_while_reading = []
    path = log.path

    def spying_path(version: str, generation: int = 0) -> Path:
        held_while_reading.append(log._lock.locked())
        return path(version, generation)

    log.path = spying_path
    titles = [r["Input"]["title"] for r in log.tail("v1", limit=5)]
    assert titles == [f"story {i}" for i in range(95, 100)]
    assert held_while_reading and not any(held_while_reading)


def test_tail_reads_backwards_within_a_byte_budget(tmp_path, monkeypatch):
    log = predlog_module.PredictionLog(tmp_path, max_bytes=10_000_000, backups=1)
    for i in range(5000):
        log.append("v1", {"title": f"story {i}"}, float(i), 1.0)
    log.flush()
    monkeypatch.setattr(predlog_module, "TAIL_MAX_BYTES", 20_000, raising=False)
    records = log.tail("v1", limit=5000)
    assert 0 < len(records) < 5000  # stopped at the budget, not at the whole file
    assert records[-1]["Input"]["title"] == "story 4999"


# --- 4. a full disk loses log records, never predictions --------------------------------------


def test_an_unwritable_log_degrades_health_but_never_fails_a_prediction(settings, monkeypatch):
    """/dev/full: every write fails with ENOSPC. Predictions answer, the flush loop survives,
    /health says "degraded" and counts; once writes work again the log resumes by itself."""
    monkeypatch.setattr(predlog_module, "RETRY_SECONDS", 0.2, raising=False)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        version = client.get("/version").json()["version"]
        path = settings.logs_dir / f"predictions-{version}.jsonl"
        path.symlink_to("/dev/full")
        for _ in range(3):
            assert client.post("/how_many_upvotes", json=STORY).status_code == 200
        batch = {"stories": [{"title": f"story {i}"} for i in range(200)]}
        for _ in range(3):  # more than the 64 KB buffer: append itself meets the error
            assert client.post("/predict", json=batch).status_code == 200
        wait_for(lambda: client.get("/health").json()["status"] == "degraded")
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json()["log_errors"] >= 1 and health.json()["log_dropped"] >= 3
        assert "/" not in json.dumps(health.json()["status"])
        path.unlink()  # the disk has room again
        time.sleep(0.3)
        assert client.post("/how_many_upvotes", json=STORY).status_code == 200
        # written by the flush loop, which must still be running
        wait_for(lambda: path.exists() and b"Show HN" in path.read_bytes())
        wait_for(lambda: client.get("/health").json()["status"] == "ok")


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A real 64 KB tmpfs (needs root and mount); skipped where it cannot be made."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_filesystem_under_the_log(trained_dir, tiny_filesystem, monkeypatch):
    monkeypatch.setattr(predlog_module, "RETRY_SECONDS", 0.2, raising=False)
    settings = ServeSettings(data_dir=trained_dir, log_dir=tiny_filesystem,
                             log_max_bytes=10_000_000)  # fmt: skip
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        batch = {
            "stories": [{"title": f"A story about filling disks, part {i}"} for i in range(256)]
        }
        for _ in range(6):  # ~6 x 256 records of ~200 bytes: 300 KB into 64 KB
            assert client.post("/predict", json=batch).status_code == 200
            assert client.post("/how_many_upvotes", json=STORY).status_code == 200
        wait_for(lambda: client.get("/health").json()["status"] == "degraded")
        assert client.get("/health").json()["log_dropped"] > 0
        logs = client.get("/logs")  # the torn end of the full file is skipped, not a 500
        assert logs.status_code == 200 and logs.json()["logs"]
        for file in tiny_filesystem.iterdir():
            file.unlink()
        time.sleep(0.3)
        assert client.post("/how_many_upvotes", json=STORY).status_code == 200
        wait_for(lambda: client.get("/health").json()["status"] == "ok")
        assert client.get("/logs").json()["logs"][-1]["Input"]["title"] == STORY["title"]


# --- 5. a torn line in the log is skipped -----------------------------------------------------


def test_a_torn_line_is_skipped_and_counted(client, settings):
    version = client.get("/version").json()["version"]
    client.post("/how_many_upvotes", json=STORY)
    client.get("/logs")  # flushed
    path = settings.logs_dir / f"predictions-{version}.jsonl"
    with path.open("ab") as f:
        f.write(b'{"Timestamp": "2024-01-01T00:00:00", "Version": "x", "Inp')  # a crash here
    client.app.state.predlog.close()  # reopened at the next record: the torn line is ended
    client.post("/how_many_upvotes", json={**STORY, "title": "After the crash"})
    response = client.get("/logs")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["Input"]["title"] for r in body["logs"]] == [STORY["title"], "After the crash"]
    assert body["skipped"] == 1


# --- 8. /metrics has a bounded number of series ------------------------------------------------


def test_made_up_methods_and_paths_do_not_grow_metrics(client):
    for i in range(50):
        client.request(f"M{i}", "/predict")
        client.get(f"/no/such/path/{i}")
    text = client.get("/metrics").text
    methods = set(re.findall(r'upvote_http_requests_total\{[^}]*method="([^"]+)"', text))
    endpoints = set(re.findall(r'upvote_http_requests_total\{endpoint="([^"]+)"', text))
    assert methods <= {"GET", "POST", "other"}, methods
    assert endpoints <= {"/predict", "/metrics", "unmatched"}, endpoints


# --- 11. smaller ones ---------------------------------------------------------------------------


def test_openapi_lists_the_error_answers(client):
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        ("/how_many_upvotes", "post"): {"200", "413", "415", "422", "503"},
        ("/predict", "post"): {"200", "413", "415", "422", "503"},
        ("/explain", "post"): {"200", "413", "415", "422", "503"},
        ("/admin/reload", "post"): {"200", "401", "403", "409", "413", "415", "422"},
        ("/similar", "get"): {"200", "404", "422", "503"},
        ("/logs", "get"): {"200", "422", "503"},
        ("/version", "get"): {"200", "503"},
        ("/health", "get"): {"200", "503"},
    }
    for (path, method), codes in expected.items():
        assert set(paths[path][method]["responses"]) == codes, path


def test_how_many_upvotes_needs_a_json_content_type(client):
    raw = json.dumps(STORY).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = client.post("/how_many_upvotes", content=raw, headers=headers)
        assert response.status_code == 415, (content_type, response.status_code)
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        response = client.post("/how_many_upvotes", content=raw,
                               headers={"Content-Type": content_type})  # fmt: skip
        assert response.status_code == 200, content_type


def test_a_503_does_not_show_server_paths(tmp_path):
    empty = ServeSettings(data_dir=tmp_path, log_dir=tmp_path / "logs")
    with TestClient(create_app(empty)) as client:
        response = client.post("/how_many_upvotes", json=STORY)
    assert response.status_code == 503
    assert str(tmp_path) not in response.text and "/models" not in response.text
    assert "upvote train" in response.json()["detail"]


def test_a_bundle_with_non_finite_outputs_is_refused(client, settings):
    version = client.get("/version").json()["version"]
    bad = settings.models_dir / "nan-quantiles"
    shutil.copytree(settings.models_dir / version, bad)
    try:
        with np.load(bad / "regressor.npz") as npz:
            weights = dict(npz)
        weights["head_bias"][1:] = np.nan  # the score is finite, the quantiles are not
        np.savez(bad / "regressor.npz", **weights)
        refused = client.post("/admin/reload", headers=AUTH, json={"version": "nan-quantiles"})
    finally:
        shutil.rmtree(bad)
    assert refused.status_code == 409, refused.text
    assert str(settings.models_dir) not in refused.text
    assert client.get("/version").json()["version"] == version


def test_a_slow_request_head_is_cut_off(trained_dir, tmp_path):
    """slowloris: a header line every 0.3 s used to hold the connection for ever."""
    with serving(trained_dir, tmp_path, request_timeout_seconds="1") as (url, port):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
            start = time.monotonic()
            closed = False
            while time.monotonic() - start < 6:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    closed = True
                    break
                sock.settimeout(0.3)
                try:
                    if sock.recv(1024) == b"":
                        closed = True
                        break
                except TimeoutError:
                    pass
            assert closed, "the server kept a slow request head open for 6 s"
            assert time.monotonic() - start < 4
        # a normal keep-alive client that pauses between requests is not cut mid-request
        with httpx.Client(base_url=url) as http:
            assert http.get("/ping").status_code == 200
            time.sleep(0.5)
            assert http.post("/how_many_upvotes", json=STORY).status_code == 200
