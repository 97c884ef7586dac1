"""The job queue end to end: a real PostgreSQL server, `upvote jobs worker` processes, real
training. Jobs run in parallel on two workers, a bad corpus fails its job but not its worker, a
cancelled job never runs, and a worker killed with SIGKILL mid-training has its job re-run by
another worker, resumed from the last epoch checkpoint."""

from __future__ import annotations

import gzip
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("procrastinate", reason="procrastinate not installed: pip install '.[jobs]'")
gensim_models = pytest.importorskip("gensim.models")

from upvote.jobs.queue import make_app, submit  # noqa: E402
from upvote.jobs.store import FINAL, State, cancel_job, connect, get_job  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from pgserver import PostgresServer, find_bin_dir  # noqa: E402
from test_jobs_api import stop_all  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"
HEARTBEAT_S, STALLED_AFTER_S = 0.5, 3.0


def word(topic: int, index: int) -> str:
    """Letters only (the word tokenizer splits digits off): topic 3, word 1 -> 'tdwb'."""
    return f"t{chr(97 + topic)}w{chr(97 + index)}"


def write_corpus(path: Path, words: int, seed: int) -> Path:
    """Topic-structured text: each line draws from one of 20 topics of 26 words."""
    rng = random.Random(seed)
    lines, written = [], 0
    while written < words:
        topic = rng.randrange(20)
        line = [word(topic, rng.randrange(26)) for _ in range(20)]
        lines.append(" ".join(line))
        written += len(line)
    path.write_text("\n".join(lines) + "\n")
    return path


class Queue:
    """The server, the environment of every `upvote` process, and the workers started."""

    def __init__(self, dsn: str, data_dir: Path) -> None:
        self.dsn, self.data_dir, self.workers = dsn, data_dir, []
        self.env = os.environ | {
            "UPVOTE_JOBS_DATABASE_URL": dsn,
            "UPVOTE_DATA_DIR": str(data_dir),
            "UPVOTE_TRACKING": "0",
            "PYTHONPATH": str(SRC),
        }

    def upvote(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "upvote", *args], env=self.env, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip

    def start_worker(self) -> subprocess.Popen:
        log = open(self.data_dir / f"worker{len(self.workers)}.log", "w")  # noqa: SIM115
        worker = subprocess.Popen(
            [sys.executable, "-m", "upvote", "jobs", "worker", "--concurrency", "1",
             "--heartbeat", str(HEARTBEAT_S), "--stalled-after", str(STALLED_AFTER_S)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        stop_all(self.workers)
        self.workers = []

    def submit(self, corpus: Path | str, **options) -> int:
        return submit(make_app(self.dsn), self.dsn, str(corpus), options)

    def job(self, job_id: int):
        with connect(self.dsn) as conn:
            return get_job(conn, job_id)

    def wait(self, job_ids, until, timeout: float = 45.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = [self.job(i) for i in job_ids]
            if all(until(job) for job in jobs):
                return jobs
            time.sleep(0.1)
        logs = "\n".join(p.read_text()[-2000:] for p in self.data_dir.glob("worker*.log"))
        raise AssertionError(f"timed out: {[self.job(i) for i in job_ids]}\n{logs}")


@pytest.fixture(scope="module")
def queue(tmp_path_factory):
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: install postgresql-15")
    server = PostgresServer.start()
    try:
        q = Queue(server.clone("jobs"), tmp_path_factory.mktemp("upvote-data"))
        for _ in range(2):  # init is idempotent
            done = q.upvote("jobs", "init")
            assert done.returncode == 0, done.stderr
        yield q
    finally:
        server.stop()


@pytest.fixture
def workers(queue):
    yield queue
    queue.stop_workers()


def load_vectors(queue: Queue, job_id: int):
    path = queue.data_dir / "jobs" / str(job_id) / "vectors.txt"
    return gensim_models.KeyedVectors.load_word2vec_format(str(path))


def test_jobs_run_on_two_workers_bad_ones_fail_and_cancelled_never_runs(workers, tmp_path):
    corpora = [write_corpus(tmp_path / f"c{i}.txt", 60_000, seed=i) for i in range(3)]
    done = workers.upvote("jobs", "submit", str(corpora[0]), "--dim", "16", "--epochs", "2")
    assert done.returncode == 0, done.stderr
    good = [int(done.stdout.strip())]
    good += [workers.submit(c, dim=16, epochs=2, model="cbow") for c in corpora[1:]]
    empty = workers.submit((tmp_path / "empty.txt").resolve(), dim=16)
    (tmp_path / "empty.txt").write_text("")
    rare = workers.submit(write_corpus(tmp_path / "rare.txt", 2_000, seed=9), min_count=1000)
    cancelled = workers.submit(corpora[0], dim=16)
    with connect(workers.dsn) as conn:
        assert cancel_job(conn, cancelled).state is State.cancelled

    first, second = workers.start_worker(), workers.start_worker()
    jobs = workers.wait([*good, empty, rare], lambda job: job.state in FINAL)

    assert [job.state for job in jobs] == [State.succeeded] * 3 + [State.failed] * 2
    assert "empty" in jobs[3].error
    assert "min_count" in jobs[4].error or "vocabulary" in jobs[4].error
    for job in jobs[:3]:
        vectors = load_vectors(workers, job.id)
        assert vectors.vector_size == 16 and len(vectors) == 20 * 26
        assert job.progress["fraction"] == 1.0 and job.attempts == 1
        # words of one topic end up closer than words of two topics
        same = vectors.similarity(word(3, 1), word(3, 2))
        assert same > vectors.similarity(word(3, 1), word(7, 2))
    # both workers are alive after the failures, and a later job still runs
    assert first.poll() is None and second.poll() is None
    later = workers.submit(corpora[1], dim=8)
    assert workers.wait([later], lambda job: job.state in FINAL)[0].state is State.succeeded
    assert workers.job(cancelled).state is State.cancelled
    assert workers.job(cancelled).started is None  # never started
    status = workers.upvote("jobs", "status", str(good[0]))
    assert status.returncode == 0 and '"succeeded"' in status.stdout
    listed = workers.upvote("jobs", "list", "--state", "failed")
    assert {int(line.split()[0]) for line in listed.stdout.splitlines()} == {empty, rare}


def test_killed_worker_job_resumes_on_another(workers, tmp_path):
    # long enough (~15M words, several seconds) to be seen mid-training: progress is written
    # once a second, and a 12-epoch job of 200k words once finished in 1.3 s unseen
    corpus = write_corpus(tmp_path / "long.txt", 400_000, seed=7)
    epochs = 40
    job_id = workers.submit(corpus, dim=64, epochs=epochs, sample=0)
    doomed = workers.start_worker()
    # past the first epoch: its checkpoint is on disk
    job = workers.wait(
        [job_id],
        lambda j: j.state is State.training and j.progress.get("fraction", 0) > 1.5 / epochs,
    )[0]
    assert job.state is State.training, "the job finished before the worker could be killed"
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    killed_at = workers.job(job_id).progress["fraction"]
    assert killed_at < 1.0
    rescuer = workers.start_worker()

    job = workers.wait([job_id], lambda j: j.state in FINAL, timeout=120)[0]
    assert job.state is State.succeeded, job.error
    assert job.attempts == 2
    assert job.worker.endswith(f":{rescuer.pid}")
    assert job.progress["resumed_from_epoch"] >= 1  # the second attempt began at a checkpoint
    assert load_vectors(workers, job_id).vector_size == 64


def test_cancel_stops_a_running_job(workers, tmp_path):
    corpus = write_corpus(tmp_path / "long.txt", 200_000, seed=3)
    job_id = workers.submit(corpus, dim=32, epochs=100, sample=0)  # a minute or more in full
    worker = workers.start_worker()
    workers.wait([job_id], lambda j: j.state is State.training and j.progress.get("fraction"))
    done = workers.upvote("jobs", "cancel", str(job_id))
    assert done.returncode == 0 and done.stdout.strip() == "cancelled"
    # the worker runs one job at a time: the next one starts only once training has stopped
    later = workers.submit(corpus, dim=8)
    assert workers.wait([later], lambda job: job.state in FINAL)[0].state is State.succeeded
    job = workers.job(job_id)
    assert job.state is State.cancelled and job.finished is not None
    assert job.progress["fraction"] < 0.5
    assert not (workers.data_dir / "jobs" / str(job_id) / "vectors.txt").exists()
    assert worker.poll() is None


def test_corpora_by_url_are_fetched_extracted_and_hostile_ones_fail(workers, corpus_server):
    site, url = corpus_server
    text = write_corpus(site / "plain.txt", 60_000, seed=11).read_bytes()
    (site / "corpus.txt.gz").write_bytes(gzip.compress(text))
    with zipfile.ZipFile(site / "corpus.zip", "w") as archive:
        archive.writestr("a/part1.txt", text[: len(text) // 2])
        archive.writestr("a/part2.txt", text[len(text) // 2 :])
        archive.writestr("../escape.txt", b"no")
    workers.env["UPVOTE_JOBS_ALLOW_HOSTS"] = "127.0.0.1"
    try:
        workers.start_worker()
    finally:
        del workers.env["UPVOTE_JOBS_ALLOW_HOSTS"]
    done = workers.upvote("jobs", "submit", f"{url}/corpus.txt.gz", "--dim", "16")
    assert done.returncode == 0, done.stderr
    gz = int(done.stdout)
    zipped = workers.submit(f"{url}/corpus.zip", dim=16)
    private = workers.submit("http://10.0.0.1/corpus.txt", dim=16)  # refused before connecting
    missing = workers.submit(f"{url}/missing.txt", dim=16)
    jobs = workers.wait([gz, zipped, private, missing], lambda job: job.state in FINAL)

    assert jobs[0].state is State.succeeded, jobs[0].error
    vectors = load_vectors(workers, gz)
    assert len(vectors) == 20 * 26 and vectors.vector_size == 16
    out = workers.data_dir / "jobs" / str(gz)
    assert not (out / "download").exists() or not any((out / "download").iterdir())
    assert not (out / "text").exists()  # the extracted text is deleted once encoded
    assert jobs[1].state is State.failed and "../escape.txt" in jobs[1].error
    assert jobs[2].state is State.failed
    assert jobs[2].error == "refused: 10.0.0.1 (private) is not a public address"
    assert jobs[3].state is State.failed and "404" in jobs[3].error
    assert all(job.attempts == 1 for job in jobs)


def test_bad_input_is_one_line(queue, tmp_path):
    done = queue.upvote("jobs", "submit", str(tmp_path / "missing.txt"))
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "not found" in done.stderr
    done = queue.upvote("jobs", "status", "999999")
    assert done.returncode == 1 and "no job 999999" in done.stderr
    env = queue.env | {"UPVOTE_JOBS_DATABASE_URL": "postgresql://u:s3cret@127.0.0.1:1/x"}
    done = subprocess.run(
        [sys.executable, "-m", "upvote", "jobs", "list"], env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1 and "s3cret" not in done.stderr + done.stdout
    assert done.stderr.count("\n") == 1
