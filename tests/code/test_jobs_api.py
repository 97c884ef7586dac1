"""The embeddings HTTP API (/v1/embeddings) on a real PostgreSQL: tokens from the CLI, 401s,
422s naming the field, quotas (429, 413), other tokens' jobs hidden (404), cancel and delete;
then end to end through a real uvicorn server and a real worker: a corpus by URL and one
uploaded train, their vectors load in gensim (text and binary), /similar and /metrics answer,
and a URL to a private address fails with the fetcher's refusal."""

from __future__ import annotations

import concurrent.futures
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

pytest.importorskip("procrastinate", reason="procrastinate not installed: pip install '.[jobs]'")
pytest.importorskip("python_multipart", reason="python-multipart not installed")
gensim_models = pytest.importorskip("gensim.models")

from fastapi.testclient import TestClient  # noqa: E402

from upvote.jobs.api.app import create_app  # noqa: E402
from upvote.jobs.api.config import JobsApiSettings  # noqa: E402
from upvote.jobs.queue import apply_schemas, make_app  # noqa: E402
from upvote.jobs.store import connect  # noqa: E402
from upvote.jobs.tokens import create_token, revoke_token  # noqa: E402
from upvote.serve.deploy import free_port  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from pgserver import PostgresServer, find_bin_dir  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"
JOBS = "/v1/embeddings/jobs"


def word(topic: int, index: int) -> str:
    return f"t{chr(97 + topic)}w{chr(97 + index)}"


def corpus_bytes(words: int, seed: int) -> bytes:
    """Topic-structured text: each line draws 20 words from one of 20 topics of 26 words."""
    rng = random.Random(seed)
    lines = []
    for _ in range(words // 20):
        topic = rng.randrange(20)
        lines.append(" ".join(word(topic, rng.randrange(26)) for _ in range(20)))
    return ("\n".join(lines) + "\n").encode()


def wait_healthy(url: str, log: Path, seconds: float = 30.0) -> None:
    """Until ``url``/health answers 200; the process's log in the failure otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def stop_all(processes: list[subprocess.Popen], timeout: float = 20.0) -> None:
    """SIGTERM to every process still running, then SIGKILL to any not gone in ``timeout``."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: install postgresql-15")
    server = PostgresServer.start()
    try:
        dsn = server.clone("jobsapi")
        apply_schemas(make_app(dsn), dsn)
        yield dsn, tmp_path_factory.mktemp("upvote-data")
    finally:
        server.stop()


def env_of(dsn: str, data_dir: Path, **extra: str) -> dict:
    return os.environ | {
        "UPVOTE_JOBS_DATABASE_URL": dsn, "UPVOTE_DATA_DIR": str(data_dir),
        "UPVOTE_TRACKING": "0", "PYTHONPATH": str(SRC), **extra,
    }  # fmt: skip


def new_token(dsn: str, name: str, **quota) -> dict:
    with connect(dsn) as conn:
        return {"Authorization": f"Bearer {create_token(conn, name, **quota)}"}


@pytest.fixture
def api(db):
    dsn, data_dir = db
    settings = JobsApiSettings(
        jobs_database_url=dsn, data_dir=data_dir, jobs_max_upload_bytes=100_000
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def fields(response) -> list[list[str]]:
    return [error["loc"] for error in response.json()["detail"]]


def test_token_cli_shows_the_token_once_and_stores_it_hashed(db):
    dsn, data_dir = db
    env = env_of(dsn, data_dir)

    def upvote(*args):
        return subprocess.run([sys.executable, "-m", "upvote", "jobs", "token", *args],
                              env=env, capture_output=True, text=True, timeout=60)  # fmt: skip

    made = upvote("create", "carol", "--max-jobs", "3", "--max-bytes", "1GiB")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("uvj_") and len(token) > 40
    with connect(dsn) as conn:
        row = conn.execute("SELECT * FROM upvote_tokens WHERE name = 'carol'").fetchone()
    assert row["hash"] != token and token not in str(row)
    assert row["max_concurrent_jobs"] == 3 and row["max_bytes"] == 1 << 30
    listed = upvote("list")
    assert "carol" in listed.stdout and token not in listed.stdout
    assert row["hash"] not in listed.stdout
    again = upvote("create", "carol")
    assert again.returncode == 1 and "exists already" in again.stderr
    assert again.stderr.count("\n") == 1
    bad = upvote("create", "dave", "--max-bytes", "lots")
    assert bad.returncode == 1 and "--max-bytes" in bad.stderr
    assert upvote("revoke", "carol").returncode == 0
    assert "revoked=20" in upvote("list").stdout  # the date of revocation
    assert upvote("revoke", "nobody").returncode == 1


def test_every_call_needs_a_valid_token(api, db):
    dsn, _ = db
    response = api.get(JOBS)
    assert response.status_code == 401 and "Bearer" in response.headers["WWW-Authenticate"]
    response = api.get(JOBS, headers={"Authorization": "Bearer uvj_wrong"})
    assert response.status_code == 401 and "invalid_token" in response.headers["WWW-Authenticate"]
    headers = new_token(dsn, "erin")
    assert api.get(JOBS, headers=headers).status_code == 200
    with connect(dsn) as conn:
        revoke_token(conn, "erin")
    response = api.get(JOBS, headers=headers)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    assert api.get("/health").json() == {"status": "ok"}  # no token needed
    assert "/v1/embeddings/jobs" in api.get("/openapi.json").json()["paths"]


def test_bad_input_is_a_422_naming_the_field(api, db):
    headers = new_token(db[0], "frank")
    cases = {
        ("body", "options", "dim"): {"url": "http://example.com/c.txt", "options": {"dim": 0}},
        ("body", "options", "model"): {"url": "http://e.com/c.txt", "options": {"model": "x"}},
        ("body", "url"): {"url": "ftp://example.com/c.txt"},
        ("body", "options", "colour"): {"url": "http://e.com/c", "options": {"colour": 1}},
        ("body", "options", "evaluation", "0"): {
            "url": "http://e.com/c", "options": {"evaluation": ["toefl"]}
        },
    }  # fmt: skip
    for field, body in cases.items():
        response = api.post(JOBS, json=body, headers=headers)
        assert response.status_code == 422, response.text
        assert list(field) in fields(response), response.json()
    response = api.post(JOBS, content=b"{not json", headers=headers)
    assert response.status_code == 422
    response = api.get(f"{JOBS}?state=sleeping", headers=headers)
    assert response.status_code == 422 and ["query", "state"] in fields(response)
    response = api.post(JOBS, files={"file": ("c.txt", b"a b c")}, data={"options": '{"dim": -1}'},
                        headers=headers)  # fmt: skip
    assert response.status_code == 422 and ["body", "options", "dim"] in fields(response)
    for content_type, body in [
        ("multipart/form-data", b"no boundary"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\ngarbage"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data; "
         b'name="other"\r\n\r\nv\r\n--xyz--\r\n'),
    ]:  # fmt: skip
        response = api.post(JOBS, content=body, headers=headers | {"Content-Type": content_type})
        assert response.status_code in (400, 422), (body, response.text)
        assert response.json()["detail"][0]["loc"][0] == "body"
    assert api.get(f"{JOBS}/notanumber", headers=headers).status_code == 422
    assert api.get(JOBS, headers=headers).json()["total"] == 0  # nothing was queued
    assert not any((db[1] / "jobs" / "uploads-tmp").iterdir())


def test_database_down_is_a_503_without_secrets(tmp_path):
    dsn = f"postgresql://upvote:s3cret@127.0.0.1:{free_port()}/jobs"
    settings = JobsApiSettings(jobs_database_url=dsn, data_dir=tmp_path, jobs_db_timeout_s=0.5)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        health = client.get("/health")
        listed = client.get(JOBS, headers={"Authorization": "Bearer uvj_x"})
        metrics = client.get("/metrics")
    assert health.status_code == 503 and listed.status_code == 503
    assert "upvote_jobs_database_up 0.0" in metrics.text
    assert all("s3cret" not in r.text for r in (health, listed, metrics))


def test_concurrent_submissions_never_pass_the_jobs_quota(db):
    """Eight submissions at once through a real uvicorn server: exactly the quota's two pass."""
    dsn, data_dir = db
    settings = JobsApiSettings(jobs_database_url=dsn, data_dir=data_dir)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), port=free_port(),
                                           log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{server.config.port}"
        headers = new_token(dsn, "oscar", max_concurrent_jobs=2)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(
                lambda i: httpx.post(f"{base}{JOBS}", json={"url": f"http://e.com/{i}"},
                                     headers=headers, timeout=30).status_code,
                range(8),
            ))  # fmt: skip
        assert sorted(statuses) == [202, 202] + [429] * 6
        metrics = httpx.get(f"{base}/metrics").text
        labels = 'endpoint="/v1/embeddings/jobs",method="POST",status="429"'
        assert f"upvote_jobs_http_requests_total{{{labels}}} 6.0" in metrics
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_jobs_are_private_listed_cancelled_and_deleted(api, db):
    dsn, data_dir = db
    grace, heidi = new_token(dsn, "grace"), new_token(dsn, "heidi")
    made = api.post(JOBS, json={"url": "https://example.com/a.txt", "options": {"dim": 8}},
                    headers=grace)  # fmt: skip
    assert made.status_code == 202, made.text
    first = made.json()
    assert first["state"] == "queued" and first["url"].endswith(f"{JOBS}/{first['id']}")
    upload = api.post(JOBS, files={"file": ("../../etc/my corpus.txt", corpus_bytes(200, 1))},
                      data={"options": '{"evaluation": ["analogy"]}'}, headers=grace)  # fmt: skip
    assert upload.status_code == 202, upload.text
    second = upload.json()["id"]
    job = api.get(f"{JOBS}/{second}", headers=grace).json()
    assert job["corpus"] == "upload:my_corpus.txt" and job["corpus_bytes"] > 0
    assert (data_dir / "jobs" / str(second) / "upload" / "my_corpus.txt").is_file()
    assert not any((data_dir / "jobs" / "uploads-tmp").iterdir())

    # another token's job does not exist for heidi
    for method, path in [("get", ""), ("post", "/cancel"), ("delete", ""), ("get", "/vectors")]:
        response = api.request(method.upper(), f"{JOBS}/{second}{path}", headers=heidi)
        assert response.status_code == 404, (method, path)
    assert api.get(JOBS, headers=heidi).json() == {"jobs": [], "total": 0, "next_offset": None}

    page = api.get(f"{JOBS}?limit=1", headers=grace).json()
    assert page["total"] == 2 and [j["id"] for j in page["jobs"]] == [second]
    assert page["next_offset"] == 1
    assert api.get(f"{JOBS}?limit=1&offset=1", headers=grace).json()["next_offset"] is None
    assert api.get(f"{JOBS}/{second}/vectors", headers=grace).status_code == 409
    assert api.get(f"{JOBS}/{second}/evaluation", headers=grace).status_code == 409
    response = api.get(f"{JOBS}/{first['id']}/evaluation", headers=grace)
    assert response.status_code == 404 and "no evaluation was requested" in response.text

    cancelled = api.post(f"{JOBS}/{first['id']}/cancel", headers=grace).json()
    assert cancelled["state"] == "cancelled" and cancelled["finished"] is not None
    listed = api.get(f"{JOBS}?state=cancelled", headers=grace).json()
    assert [j["id"] for j in listed["jobs"]] == [first["id"]]
    assert api.delete(f"{JOBS}/{second}", headers=grace).status_code == 204
    assert api.get(f"{JOBS}/{second}", headers=grace).status_code == 404
    assert not (data_dir / "jobs" / str(second)).exists()
    with connect(dsn) as conn:  # the deleted job was queued: it is cancelled, never to run
        assert conn.execute("SELECT state FROM upvote_jobs WHERE id = %s",
                            (second,)).fetchone()["state"] == "cancelled"  # fmt: skip


def test_quotas_429_and_413(api, db):
    dsn, data_dir = db
    ivan = new_token(dsn, "ivan", max_concurrent_jobs=2, max_bytes=5_000)
    body = {"file": ("c.txt", b"x " * 1_500)}
    assert api.post(JOBS, files=body, headers=ivan).status_code == 202
    assert api.post(JOBS, json={"url": "http://example.com/c"}, headers=ivan).status_code == 202
    response = api.post(JOBS, json={"url": "http://example.com/c"}, headers=ivan)
    assert response.status_code == 429 and "at once is 2" in response.json()["detail"]
    jobs = api.get(JOBS, headers=ivan).json()["jobs"]
    api.post(f"{JOBS}/{jobs[0]['id']}/cancel", headers=ivan)  # a slot is free again
    # 3,000 of 5,000 bytes used: a 3,000-byte upload is over the token's quota
    response = api.post(JOBS, files=body, headers=ivan)
    assert response.status_code == 413 and ["body", "file"] in fields(response)
    assert "quota" in response.text
    judy = new_token(dsn, "judy")
    response = api.post(JOBS, files={"file": ("big.txt", b"y" * 150_000)}, headers=judy)
    assert response.status_code == 413 and "upload limit" in response.text
    assert not any((data_dir / "jobs" / "uploads-tmp").iterdir())  # nothing left behind
    assert api.get(JOBS, headers=judy).json()["total"] == 0
    full = new_token(dsn, "ken", max_bytes=10)
    assert api.post(JOBS, files={"file": ("c.txt", b"a" * 10)}, headers=full).status_code == 202
    response = api.post(JOBS, json={"url": "http://example.com/c"}, headers=full)
    assert response.status_code == 429 and "bytes" in response.json()["detail"]


@pytest.fixture
def service(db, tmp_path):
    """A real `upvote jobs api` (uvicorn) and one `upvote jobs worker`; (base URL, log folder)."""
    dsn, data_dir = db
    port = free_port()
    env = env_of(dsn, data_dir, UPVOTE_JOBS_ALLOW_HOSTS="127.0.0.1")
    logs = [open(tmp_path / name, "w") for name in ("api.log", "worker.log")]  # noqa: SIM115
    processes = [
        subprocess.Popen([sys.executable, "-m", "upvote", "jobs", "api", "--port", str(port)],
                         env=env, stdout=logs[0], stderr=subprocess.STDOUT),
        subprocess.Popen([sys.executable, "-m", "upvote", "jobs", "worker", "--heartbeat", "0.5",
                          "--stalled-after", "5"], env=env, stdout=logs[1],
                         stderr=subprocess.STDOUT),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, tmp_path / "api.log")
    yield url, tmp_path
    stop_all(processes)


def test_end_to_end_url_and_upload_train_and_serve_vectors(service, corpus_server, db, tmp_path):
    url, logs = service
    site, site_url = corpus_server
    (site / "corpus.txt").write_bytes(corpus_bytes(60_000, seed=5))
    headers = new_token(db[0], "lena")
    client = httpx.Client(base_url=url, headers=headers, timeout=30)
    options = {"dim": 16, "epochs": 2}
    by_url = client.post(JOBS, json={"url": f"{site_url}/corpus.txt", "options": options})
    cbow = '{"dim": 16, "epochs": 2, "model": "cbow"}'
    uploaded = client.post(JOBS, files={"file": ("c.txt", corpus_bytes(60_000, 6))},
                           data={"options": cbow})  # fmt: skip
    private = client.post(JOBS, json={"url": "http://10.0.0.1/corpus.txt"})
    # the worker caps a URL's download at what is left of the owner's byte quota
    small = httpx.Client(base_url=url, headers=new_token(db[0], "mallory", max_bytes=50_000))
    over = small.post(JOBS, json={"url": f"{site_url}/corpus.txt"})
    assert [r.status_code for r in (by_url, uploaded, private, over)] == [202] * 4, uploaded.text
    ids = [r.json()["id"] for r in (by_url, uploaded, private)]
    pairs = [*((client, i) for i in ids), (small, over.json()["id"])]

    deadline = time.monotonic() + 60
    while True:
        jobs = [who.get(f"{JOBS}/{i}").json() for who, i in pairs]
        if all(job["state"] in ("succeeded", "failed", "cancelled") for job in jobs):
            break
        assert time.monotonic() < deadline, (jobs, (logs / "worker.log").read_text()[-3000:])
        time.sleep(0.3)
    over = jobs.pop()
    assert [job["state"] for job in jobs] == ["succeeded", "succeeded", "failed"], jobs
    assert jobs[2]["error"] == "refused: 10.0.0.1 (private) is not a public address"
    assert jobs[0]["corpus_bytes"] == (site / "corpus.txt").stat().st_size
    assert jobs[0]["progress"]["fraction"] == 1.0 and jobs[0]["duration_s"] > 0
    assert jobs[0]["worker"]
    assert over["state"] == "failed" and "quota of token 'mallory'" in over["error"], over

    for job_id in ids[:2]:
        for fmt, binary in (("txt", False), ("bin", True)):
            response = client.get(f"{JOBS}/{job_id}/vectors?format={fmt}")
            assert response.status_code == 200
            path = tmp_path / f"{job_id}.{fmt}"
            path.write_bytes(response.content)
            vectors = gensim_models.KeyedVectors.load_word2vec_format(str(path), binary=binary)
            assert len(vectors) == 20 * 26 and vectors.vector_size == 16
        similar = client.get(f"{JOBS}/{job_id}/similar",
                             params={"word": word(3, 1), "topn": 5}).json()  # fmt: skip
        assert len(similar["similar"]) == 5
        assert sum(hit["word"].startswith("td") for hit in similar["similar"]) >= 3, similar
    response = client.get(f"{JOBS}/{ids[0]}/similar", params={"word": "zzz"})
    assert response.status_code == 404 and ["query", "word"] in fields(response)

    metrics = httpx.get(f"{url}/metrics").text
    assert 'upvote_jobs{state="succeeded"}' in metrics and "upvote_jobs_running 0.0" in metrics
    assert 'upvote_job_duration_seconds_count{state="succeeded"}' in metrics
    failed = [line for line in metrics.splitlines() if line.startswith("upvote_jobs_failed_total")]
    assert failed and float(failed[0].split()[-1]) >= 1
    assert client.delete(f"{JOBS}/{ids[0]}").status_code == 204
    assert client.get(f"{JOBS}/{ids[0]}/vectors").status_code == 404

    # deleting a running job: cancelled, forgotten, and the worker removes what it wrote
    long = client.post(JOBS, files={"file": ("long.txt", corpus_bytes(200_000, 7))},
                       data={"options": '{"dim": 32, "epochs": 100, "sample": 0}'})  # fmt: skip
    long_id = long.json()["id"]
    while (job := client.get(f"{JOBS}/{long_id}").json())["progress"].get("fraction") is None:
        assert time.monotonic() < deadline + 60, job
        time.sleep(0.2)
    assert client.delete(f"{JOBS}/{long_id}").status_code == 204
    assert client.get(f"{JOBS}/{long_id}").status_code == 404
    folder = db[1] / "jobs" / str(long_id)
    stop = time.monotonic() + 20
    while folder.exists() and time.monotonic() < stop:
        time.sleep(0.2)
    assert not folder.exists()
    with connect(db[0]) as conn:
        row = conn.execute("SELECT * FROM upvote_jobs WHERE id = %s", (long_id,)).fetchone()
    assert row["state"] == "cancelled" and row["progress"]["fraction"] < 0.5


def test_a_download_over_the_tokens_byte_quota_fails_its_job_naming_the_quota(
    service, corpus_server, db
):
    url, logs = service
    site, site_url = corpus_server
    (site / "corpus.txt").write_bytes(corpus_bytes(40_000, seed=9))  # ~240 KB
    client = httpx.Client(base_url=url, headers=new_token(db[0], "olga", max_bytes=100_000))
    created = client.post(JOBS, json={"url": f"{site_url}/corpus.txt"})
    assert created.status_code == 202, created.text
    deadline = time.monotonic() + 60
    while (job := client.get(f"{JOBS}/{created.json()['id']}").json())["state"] not in (
        "succeeded",
        "failed",
    ):
        assert time.monotonic() < deadline, (job, (logs / "worker.log").read_text())
        time.sleep(0.2)
    assert job["state"] == "failed"
    assert "100000 bytes left of the byte quota of token 'olga'" in job["error"], job
