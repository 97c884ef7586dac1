"""`upvote jobs serve` on one machine: its own PostgreSQL (jobs/embedded.py), workers, the
schemas and the HTTP API; a job submitted with `upvote jobs submit` (which finds the saved database
URL) trains and is evaluated on the shipped standard sets, one uploaded through the API with a
token trains too, and SIGTERM stops the API, the workers and PostgreSQL."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("procrastinate", reason="procrastinate not installed: pip install '.[jobs]'")

from upvote.embeddings.evaluate import read_analogies, read_word_pairs, standard_set
from upvote.jobs.embedded import find_bin_dir
from upvote.jobs.options import JobsError, job_params
from upvote.serve.deploy import free_port

SRC = Path(__file__).resolve().parents[2] / "src"


def test_evaluation_option_is_validated():
    job_params({"evaluation": ["analogy", "simlex999"]})
    with pytest.raises(JobsError, match=r"unknown evaluation set\(s\) \['toefl'\]"):
        job_params({"evaluation": ["analogy", "toefl"]})
    with pytest.raises(JobsError, match="list of set names"):
        job_params({"evaluation": "analogy"})


def write_corpus(path: Path, lines: int = 3000, seed: int = 0) -> Path:
    """Real words: each line mixes WordSim-353 pairs and 'family' analogy questions, so the
    standard sets cover the vocabulary."""
    rng = random.Random(seed)
    pairs = [(a.lower(), b.lower()) for a, b, _ in read_word_pairs(standard_set("wordsim353"))]
    family = dict(read_analogies(standard_set("analogy")))["family"]
    with path.open("w") as f:
        for _ in range(lines):
            words = [w for _ in range(4) for w in rng.choice(pairs)]
            words += [w.lower() for w in rng.choice(family)]
            f.write(" ".join(words) + "\n")
    return path


def wait_for(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not reaped yet, counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def data_dir():
    """Not under pytest's 0700 tmp folders: as root, PostgreSQL runs as user postgres, which
    must reach the cluster folder."""
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: install postgresql")
    path = Path(tempfile.mkdtemp(prefix="upvote-serve-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_serve_runs_postgres_workers_and_the_api_and_stops_them_all(data_dir):
    env = {k: v for k, v in os.environ.items() if k != "UPVOTE_JOBS_DATABASE_URL"}
    env |= {"UPVOTE_DATA_DIR": str(data_dir), "UPVOTE_TRACKING": "0", "PYTHONPATH": str(SRC)}
    log = data_dir / "serve.log"
    port = str(free_port())

    def upvote(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "upvote", *args], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    with log.open("w") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "upvote", "jobs", "serve", "--workers", "2", "--port", port],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        ready = wait_for(
            lambda: re.search(r"jobs service ready: database (\S+),", log.read_text()),
            60, "the ready line", log,
        )  # fmt: skip
        saved = data_dir / "jobs" / "database_url"
        dsn = saved.read_text().strip()
        password = dsn.split("://", 1)[1].split("@")[0].split(":", 1)[1]
        assert ready.group(1) == dsn.replace(password, "***")
        assert password not in log.read_text()
        assert saved.stat().st_mode & 0o777 == 0o600
        pid_file = data_dir / "jobs" / "postgres" / "data" / "postmaster.pid"
        postmaster = int(pid_file.read_text().splitlines()[0])

        corpus = write_corpus(data_dir / "corpus.txt")
        done = upvote("jobs", "submit", str(corpus), "--dim", "16", "--epochs", "2",
                      "--evaluation", "wordsim353", "--evaluation", "analogy")  # fmt: skip
        assert done.returncode == 0, done.stderr
        job_id = int(done.stdout)

        def final():
            status = upvote("jobs", "status", str(job_id))
            assert status.returncode == 0, status.stderr
            job = json.loads(status.stdout)
            return job if job["state"] in ("succeeded", "failed", "cancelled") else None

        job = wait_for(final, 120, "the job", log)
        assert job["state"] == "succeeded", job

        # the API of the same service: a token, an upload, the vectors
        created = upvote("jobs", "token", "create", "alice")
        assert created.returncode == 0, created.stderr
        token = created.stdout.split()[-1]
        assert token.startswith("uvj_")
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}/v1/embeddings",
                           headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
        with corpus.open("rb") as upload:
            answer = api.post("/jobs", files={"file": ("corpus.txt", upload)},
                              data={"options": json.dumps({"dim": 8})})  # fmt: skip
        assert answer.status_code == 202, answer.text
        uploaded = answer.json()["id"]
        assert api.get(f"/jobs/{job_id}").status_code == 404  # not alice's job
        done_job = wait_for(
            lambda: (j := api.get(f"/jobs/{uploaded}").json())["state"] in ("succeeded", "failed")
            and j, 120, "the uploaded job", log,
        )  # fmt: skip
        assert done_job["state"] == "succeeded", done_job
        vectors = api.get(f"/jobs/{uploaded}/vectors", params={"format": "txt"})
        assert vectors.status_code == 200 and vectors.text.split("\n")[0].endswith(" 8")
        results = json.loads((data_dir / "jobs" / str(job_id) / "evaluation.json").read_text())
        ws = results["wordsim353"]
        assert ws["metric"] == "spearman" and ws["coverage"] > 0.9 and ws["used"] > 300
        assert -1 <= ws["value"] <= 1
        analogy = results["analogy"]
        assert analogy["sections"]["family"]["total"] > 0 and 0 <= analogy["value"] <= 1
        assert job["progress"]["evaluation"] == {"wordsim353": ws["value"],
                                                 "analogy": analogy["value"]}  # fmt: skip
        workers = set(
            re.findall(r"procrastinate\.worker\.\S+:(\d+) Starting worker", log.read_text())
        )
        assert len(workers) == 2
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]
    assert "jobs service stopped" in log.read_text()
    assert not pid_file.exists()
    gone = [postmaster, *map(int, workers)]  # the postmaster's last moments follow its pid file
    wait_for(lambda: not any(alive(pid) for pid in gone), 10, "processes to exit", log)


def test_serve_without_postgresql_binaries_fails_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from upvote.jobs import embedded
    from upvote.jobs.cli import app
    from upvote.settings import get_settings

    if embedded.wheel_bin_dir() is not None:  # (tests/data/pgserver.py is no wheel)
        pytest.skip("the pgserver wheel provides binaries here")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("UPVOTE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("UPVOTE_JOBS_DATABASE_URL", raising=False)
    monkeypatch.setattr(embedded, "SYSTEM_VERSIONS", tmp_path / "postgresql")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--no-api"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {embedded.NO_BINARIES}"]
