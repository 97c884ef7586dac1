"""The durable queue: a Procrastinate app on PostgreSQL whose one task trains word2vec for a job.

Jobs are rows in Procrastinate's tables, so any machine that reaches the database can run a
worker (`upvote jobs worker`); our own record of each job is store.py's `upvote_jobs`. Why these
pieces:

- a worker killed mid-job (SIGKILL, a lost machine) stops sending heartbeats; every worker
  periodically asks Procrastinate for jobs of such stalled workers and puts them back in the
  queue (`reap_stalled`), and the re-run resumes from the job's last epoch checkpoint;
- nothing trains one job twice at once: each run holds a PostgreSQL advisory lock on the job id
  for its whole length, on its own connection, which the server drops when the process dies;
- the App is built by `make_app`, never at import: importing this module needs no database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import procrastinate

from upvote.embeddings.engines.cpu import CHECKPOINT, load_checkpoint
from upvote.embeddings.evaluate import evaluate_standard
from upvote.jobs import store, tokens
from upvote.jobs.artifacts import ArtifactStore, open_store
from upvote.jobs.fetch import FetchLimits
from upvote.jobs.inputs import encoded_corpus
from upvote.jobs.options import (
    UPLOAD_PREFIX,
    JobsError,
    database_url,
    evaluation_sets,
    job_params,
)
from upvote.jobs.store import State
from upvote.redact import redact
from upvote.settings import get_settings

log = logging.getLogger(__name__)

TASK = "train_embeddings"
QUEUE = "embeddings"
LOCK_SPACE = 0x75707674  # first key of our advisory locks ("upvt"): apart from other users'
PROGRESS_EVERY_S = 1.0  # at most one progress write per job per second
RESULTS = ("vectors.txt", "params.json", "evaluation.json")  # pushed to the store at the end


class Cancelled(Exception):
    """Raised from the progress callback when the job was cancelled: training stops there."""


def evaluate_job(vectors, names: list[str], out: Path) -> dict:
    """Score the vectors on the named sets, write out/evaluation.json, return the summary
    (set -> value) that goes into the job's progress."""
    results = evaluate_standard(vectors, names)
    (out / "evaluation.json").write_text(json.dumps(results, indent=2))
    return {name: result["value"] for name, result in results.items()}


def make_app(
    dsn: str | None = None, artifacts_dir: Path | None = None, threads: int | None = None
) -> procrastinate.App:
    """The Procrastinate app with its one task, bound to a database and an artifact store
    (artifacts.open_store: UPVOTE_JOBS_ARTIFACTS_URL, or the folder artifacts_dir, default
    jobs_dir, which is the local scratch folder with a store URL). threads: training threads of
    every job this process runs (the worker's machine decides, not the job; default
    Word2VecParams')."""
    dsn = database_url(dsn)
    artifacts = open_store(get_settings(), artifacts_dir)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

    @app.task(name=TASK, queue=QUEUE)
    def train_embeddings(job_id: int) -> str | None:
        return run_job(dsn, job_id, artifacts, threads=threads)

    return app


def apply_schemas(app: procrastinate.App, dsn: str) -> None:
    """Procrastinate's schema (once: it is not idempotent itself) and ours (idempotent)."""
    with store.connect(dsn) as conn:
        installed = conn.execute("SELECT to_regclass('procrastinate_jobs') AS t").fetchone()["t"]
        if installed is None:
            with app.open():
                app.schema_manager.apply_schema()
        store.apply_schema(conn)
        tokens.apply_schema(conn)


def create(
    conn, corpus: str, options: dict, owner: str = "", corpus_bytes: int | None = None
) -> store.Job:
    """Record a job (its options checked first); it runs once `defer`red. Apart so that the API
    can put an upload in the job's folder between the two."""
    job_params(options)
    return store.create_job(conn, corpus, options, owner, corpus_bytes)


def defer(app: procrastinate.App, conn, job_id: int) -> None:
    """Queue the task of a recorded job (the app open). The queueing lock refuses a second
    queued copy of one job."""
    task = app.tasks[TASK].configure(queueing_lock=f"upvote-job-{job_id}")
    store.set_queue_id(conn, job_id, task.defer(job_id=job_id))


def submit(app: procrastinate.App, dsn: str, corpus: str, options: dict, owner: str = "") -> int:
    """Record the job and queue its task; returns our job id."""
    with store.connect(dsn) as conn:
        job = create(conn, corpus, options, owner)
        with app.open():
            defer(app, conn, job.id)
    return job.id


async def reap_stalled(app: procrastinate.App, every_s: float, stalled_after_s: float) -> None:
    """Forever: put back in the queue the jobs of workers silent for stalled_after_s."""
    while True:
        await asyncio.sleep(every_s)
        try:
            stalled = await app.job_manager.get_stalled_jobs(
                seconds_since_heartbeat=stalled_after_s
            )
        except Exception:  # a database hiccup: try again next round
            log.exception("looking for stalled jobs failed")
            continue
        for job in stalled:
            try:  # another worker may have re-queued it a moment ago: then this one fails
                await app.job_manager.retry_job(job)
                log.warning("job %s of a stalled worker went back in the queue", job.id)
            except Exception as error:
                log.info("job %s not re-queued here: %s", job.id, error)


async def work(
    app: procrastinate.App, concurrency: int, heartbeat_s: float, stalled_after_s: float
) -> None:
    """Run a worker (until SIGINT/SIGTERM) and the stalled-job reaper beside it."""
    async with app.open_async():
        reaper = asyncio.create_task(reap_stalled(app, heartbeat_s, stalled_after_s))
        try:
            await app.run_worker_async(
                queues=[QUEUE],
                concurrency=concurrency,
                name=worker_name(),
                update_heartbeat_interval=heartbeat_s,
                stalled_worker_timeout=stalled_after_s,
            )
        finally:
            reaper.cancel()


def sweep_scratch(dsn: str, artifacts: ArtifactStore) -> list[int]:
    """Remove this machine's scratch folders of jobs that are over (the ids removed). A worker
    killed mid-attempt leaves its folder, and the job may have finished elsewhere since; the
    folder of a job still queued or running stays (its next attempt here starts afresh)."""
    removed = []
    with store.connect(dsn) as conn:
        for job_id in artifacts.scratch_jobs():
            job = store.get_job(conn, job_id)
            if job is None or job.deleted is not None or job.state in store.FINAL:
                artifacts.finish(job_id)
                removed.append(job_id)
    return removed


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextlib.contextmanager
def job_lock(dsn: str, job_id: int) -> Iterator[bool]:
    """True while this process alone runs job_id (a session advisory lock on its own
    connection: released at the end, or by the server when the process dies)."""
    with store.connect(dsn) as conn:
        got = conn.execute(
            "SELECT pg_try_advisory_lock(%s, %s) AS got", (LOCK_SPACE, job_id)
        ).fetchone()["got"]
        try:
            yield got
        finally:
            if got:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_SPACE, job_id))


class Reporter:
    """The training progress callback: sums words, writes progress at most once a second and
    raises Cancelled once the job's row says cancelled. Engines call it from several threads."""

    def __init__(self, conn, job_id: int, total: int, done: int, extra: dict) -> None:
        self.conn, self.job_id, self.total, self.extra = conn, job_id, total, extra
        self.done = done
        self.lock = threading.Lock()
        self.t0 = self.last = time.monotonic()
        self.words_since_start, self.loss = 0, None

    def __call__(self, words: int, loss: float) -> None:
        with self.lock:
            self.done += words
            self.words_since_start += words
            self.loss = loss
            now = time.monotonic()
            if now - self.last < PROGRESS_EVERY_S:
                return
            self.last = now
            speed = self.words_since_start / max(now - self.t0, 1e-9)
            state = store.set_progress(self.conn, self.job_id, self.snapshot(speed, loss))
        if state in (State.cancelled, None):  # None: the row is gone
            raise Cancelled

    def final(self) -> dict:
        speed = self.words_since_start / max(time.monotonic() - self.t0, 1e-9)
        return self.snapshot(speed, self.loss) | {"eta_s": 0}

    def snapshot(self, speed: float, loss: float | None) -> dict:
        return self.extra | {
            "fraction": min(self.done / max(self.total, 1), 1.0),
            "words_per_s": round(speed),
            "loss": loss,
            "eta_s": round(max(self.total - self.done, 0) / speed, 1) if speed > 0 else None,
        }


def run_job(
    dsn: str,
    job_id: int,
    artifacts: ArtifactStore,
    limits: FetchLimits | None = None,
    threads: int | None = None,
) -> str | None:
    """Run one attempt of a job; returns its final state (None: nothing to do). Every error of
    the job's own making ends it as failed with the message: the worker goes on.

    It trains in the store's scratch folder (the store's own folder without a store URL, where
    pushes and pulls copy nothing): the last checkpoint is pulled before training and each new
    one pushed, the results are pushed before the job's row says succeeded, and the scratch
    folder goes at the end."""
    from upvote.embeddings.word2vec import train as train_vectors  # numba: only workers pay

    with job_lock(dsn, job_id) as mine, store.connect(dsn) as conn:
        if not mine:
            log.warning("job %s runs elsewhere already: skipped", job_id)
            return None
        job = store.start_job(conn, job_id, worker_name())
        if job is None:
            return None  # cancelled while queued, or finished by an earlier attempt
        log.info("job %s attempt %s started by %s", job_id, job.attempts, worker_name())
        artifacts.begin(job_id)
        out = artifacts.scratch(job_id)
        try:
            params, tokenizer = job_params(job.options)
            if threads is not None:
                params = replace(params, threads=threads)
            out.mkdir(parents=True, exist_ok=True)
            encoded = encoded_corpus(
                conn, job, params, tokenizer, artifacts, limits or FetchLimits()
            )
            if params.negative >= len(encoded.vocab):
                raise JobsError(
                    f"negative {params.negative} needs a vocabulary of more than that many "
                    f"words; this corpus has {len(encoded.vocab)} (lower negative or min_count)"
                )
            artifacts.pull(job_id, CHECKPOINT)  # an attempt elsewhere got this far
            checkpoint = load_checkpoint(out)
            resumed = checkpoint[1]["epochs_done"] if checkpoint else 0
            if not store.set_state(conn, job_id, State.training):
                raise Cancelled  # cancelled (or deleted) while the corpus was fetched or encoded
            extra = {"resumed_from_epoch": resumed, "epochs": params.epochs}
            reporter = Reporter(
                conn, job_id, encoded.n_tokens * params.epochs, encoded.n_tokens * resumed, extra
            )
            vectors = train_vectors(
                encoded, params, checkpoint_dir=out, resume=True, progress=reporter,
                on_checkpoint=lambda path: artifacts.push(job_id, path.name),
            )  # fmt: skip
            vectors.save_word2vec_format(out / "vectors.txt")
            meta = params.to_dict() | {"tokenizer": tokenizer, "vocabulary": len(vectors)}
            (out / "params.json").write_text(json.dumps(meta, indent=2))
            final_progress = reporter.final()
            names = evaluation_sets(job.options)
            if names:
                final_progress["evaluation"] = evaluate_job(vectors, names, out)
            for name in RESULTS:
                if (out / name).exists():
                    artifacts.push(job_id, name)
            store.set_progress(conn, job_id, final_progress)
            final = State.succeeded
            store.set_state(conn, job_id, final)
        except Cancelled:
            final = State.cancelled
        except Exception as error:  # the job's failure, not the worker's
            log.warning("job %s failed: %s", job_id, error)
            final = State.failed
            message = redact(str(error) or type(error).__name__, job.corpus)
            store.set_state(conn, job_id, final, error=message)
        log.info("job %s attempt %s ended by %s: %s", job_id, job.attempts, worker_name(), final)
        if job.corpus.startswith(UPLOAD_PREFIX):  # the job is over: nothing reads it again
            artifacts.remove(f"{job_id}/upload/{job.corpus.removeprefix(UPLOAD_PREFIX)}")
        now = store.get_job(conn, job_id)
        if now is None or now.deleted is not None:  # deleted while it ran (store.mark_deleted)
            artifacts.remove_job(job_id)
        artifacts.finish(job_id)
        return final.value
