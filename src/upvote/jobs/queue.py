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
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import procrastinate

from upvote.embeddings.corpus import EncodedCorpus, encode_corpus, iter_documents
from upvote.embeddings.engines.cpu import load_checkpoint
from upvote.embeddings.evaluate import STANDARD_SETS, evaluate_standard
from upvote.embeddings.params import Word2VecParams
from upvote.jobs import store, tokens
from upvote.jobs.extract import extract
from upvote.jobs.fetch import FetchError, FetchLimits, fetch
from upvote.jobs.store import State
from upvote.redact import redact
from upvote.settings import get_settings

log = logging.getLogger(__name__)

TASK = "train_embeddings"
QUEUE = "embeddings"
LOCK_SPACE = 0x75707674  # first key of our advisory locks ("upvt"): apart from other users'
PROGRESS_EVERY_S = 1.0  # at most one progress write per job per second
# the `upvote embed train` options a job may set, and the Word2VecParams field each one sets
OPTION_FIELDS = {
    "dim": "vector_size",
    "window": "window",
    "negative": "negative",
    "min_count": "min_count",
    "sample": "sample",
    "epochs": "epochs",
}
TOKENIZERS = ("word", "sentencepiece")
# options that are no Word2VecParams field; "evaluation": standard sets (embeddings/evaluate.py
# STANDARD_SETS) the worker scores the vectors on after training, into <out>/evaluation.json
OTHER_OPTIONS = ("model", "tokenizer", "column", "evaluation")
# A job's corpus: an http(s) URL (fetched by the worker), "upload:NAME" (a file the API streamed
# to <artifacts>/<id>/upload/NAME), or a local path an operator gave `upvote jobs submit`.
UPLOAD_PREFIX = "upload:"


class JobsError(RuntimeError):
    """A configuration the queue cannot work with (no database URL, bad job options)."""


class Cancelled(Exception):
    """Raised from the progress callback when the job was cancelled: training stops there."""


def database_url(dsn: str | None = None) -> str:
    """The given URL, else UPVOTE_JOBS_DATABASE_URL, else the one `upvote jobs serve` saved for
    its own PostgreSQL (settings.jobs_database_url_file)."""
    settings = get_settings()
    saved = settings.jobs_database_url_file
    dsn = dsn or settings.jobs_database_url or (saved.read_text().strip() if saved.exists() else "")
    if not dsn:
        raise JobsError(
            "no job database: set UPVOTE_JOBS_DATABASE_URL (a PostgreSQL URL) "
            "or start one with `upvote jobs serve`"
        )
    return dsn


def job_params(options: dict) -> tuple[Word2VecParams, str]:
    """(word2vec parameters, tokenizer) of a job's options; unknown or bad ones raise JobsError,
    so a bad submission is refused before it is queued and a bad row fails its job."""
    unknown = sorted(set(options) - set(OPTION_FIELDS) - set(OTHER_OPTIONS))
    if unknown:
        raise JobsError(f"unknown job option(s) {unknown}")
    model = options.get("model", "sg")
    tokenizer = options.get("tokenizer", "word")
    if model not in ("sg", "cbow"):
        raise JobsError(f"model must be sg or cbow, not {model!r}")
    if tokenizer not in TOKENIZERS:
        raise JobsError(f"tokenizer must be word or sentencepiece, not {tokenizer!r}")
    column = options.get("column")
    if column is not None and (not isinstance(column, str) or not column.strip()):
        raise JobsError(f"column must be a column name, not {column!r}")
    evaluation_sets(options)
    given = {OPTION_FIELDS[k]: v for k, v in options.items() if k in OPTION_FIELDS}
    for name, value in given.items():
        low = 0 if name in ("negative", "sample") else 1
        if not isinstance(value, int | float) or value < low:
            raise JobsError(f"{name} must be a number >= {low}, not {value!r}")
    return replace(Word2VecParams(), sg=model == "sg", **given), tokenizer


def evaluation_sets(options: dict) -> list[str]:
    """The standard evaluation sets a job asked for (none by default); unknown names raise."""
    names = options.get("evaluation", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise JobsError(f"evaluation must be a list of set names, not {names!r}")
    unknown = sorted(set(names) - set(STANDARD_SETS))
    if unknown:
        raise JobsError(f"unknown evaluation set(s) {unknown}: use {', '.join(STANDARD_SETS)}")
    return list(dict.fromkeys(names))


def evaluate_job(vectors, names: list[str], out: Path) -> dict:
    """Score the vectors on the named sets, write out/evaluation.json, return the summary
    (set -> value) that goes into the job's progress."""
    results = evaluate_standard(vectors, names)
    (out / "evaluation.json").write_text(json.dumps(results, indent=2))
    return {name: result["value"] for name, result in results.items()}


def make_app(
    dsn: str | None = None, artifacts_dir: Path | None = None, threads: int | None = None
) -> procrastinate.App:
    """The Procrastinate app with its one task, bound to a database and an artifacts folder.
    threads: training threads of every job this process runs (the worker's machine decides,
    not the job; default Word2VecParams')."""
    dsn = database_url(dsn)
    artifacts = artifacts_dir or get_settings().jobs_dir
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


def _tokenize(tokenizer: str, documents, out: Path):
    """The tokenize callable; a SentencePiece model is trained once per job and kept in out."""
    from upvote.tokenizer.sentencepiece import SentencePieceTokenizer
    from upvote.tokenizer.word import WordTokenizer

    if tokenizer == "word":
        return WordTokenizer().tokenize
    model_dir = out / "tokenizer"
    if model_dir.is_dir():
        return SentencePieceTokenizer.load(model_dir).tokenize
    model = SentencePieceTokenizer.train(documents)
    model.save(model_dir)
    return model.tokenize


def is_url(corpus: str) -> bool:
    return corpus.split(":", 1)[0].lower() in ("http", "https")


def owner_limits(conn, job: store.Job, limits: FetchLimits) -> FetchLimits:
    """The fetch limits of a URL job whose owner is an API token: the download is capped at what
    is left of the token's byte quota (an operator's job, owned by no token, has no quota)."""
    token = tokens.get_token(conn, job.owner) if is_url(job.corpus) else None
    if token is None:
        return limits
    settings = get_settings()
    quota = tokens.quota(token, settings.jobs_max_concurrent_jobs, settings.jobs_max_bytes)
    remaining = quota.max_bytes - store.usage(conn, job.owner, besides=job.id)[1]
    if remaining <= 0:
        raise JobsError(
            f"the byte quota of token {job.owner!r} ({quota.max_bytes} bytes) is used up"
        )
    return replace(limits, max_download_bytes=min(limits.max_download_bytes, remaining))


def _fetch_within_quota(job: store.Job, dest: Path, limits: FetchLimits) -> Path:
    """fetch, with a download over the owner's remaining quota named as such."""
    try:
        return fetch(job.corpus, dest, limits)
    except FetchError as error:
        if limits.max_download_bytes < FetchLimits.max_download_bytes and "larger" in str(error):
            raise FetchError(
                f"download larger than the {limits.max_download_bytes} bytes left of the byte "
                f"quota of token {job.owner!r}"
            ) from None
        raise


def corpus_text(conn, job: store.Job, out: Path, limits: FetchLimits) -> str:
    """The job's corpus as something `iter_documents` reads. A stranger's corpus (a URL, an
    upload) is fetched SSRF-safely and made into one checked UTF-8 text file, out/text/corpus.txt,
    which a later attempt reuses; the download is deleted once extracted. An operator's local path
    (`upvote jobs submit PATH`) is read as `upvote embed train` reads it."""
    text = out / "text" / "corpus.txt"
    if text.exists():
        return str(text)
    column = job.options.get("column")
    if is_url(job.corpus):
        store.set_state(conn, job.id, State.fetching)
        downloaded = _fetch_within_quota(job, out / "download", owner_limits(conn, job, limits))
        store.set_corpus_bytes(conn, job.id, downloaded.stat().st_size)
        try:
            extract(downloaded, text.parent, column=column, limits=limits)
        finally:
            downloaded.unlink(missing_ok=True)
    elif job.corpus.startswith(UPLOAD_PREFIX):
        uploaded = out / "upload" / job.corpus.removeprefix(UPLOAD_PREFIX)
        extract(uploaded, text.parent, column=column, limits=limits)
        uploaded.unlink(missing_ok=True)
    else:
        return job.corpus
    store.set_state(conn, job.id, State.encoding)
    return str(text)


def encoded_corpus(
    conn, job: store.Job, params: Word2VecParams, tokenizer: str, out: Path, limits: FetchLimits
) -> EncodedCorpus:
    """The encoded corpus in out/corpus: reused when an earlier attempt finished encoding (then
    nothing is fetched again); the extracted text is deleted once encoded."""
    encoded_dir = out / "corpus"
    if (encoded_dir / "meta.json").exists():
        return EncodedCorpus.open(encoded_dir)
    corpus = corpus_text(conn, job, out, limits)
    encoded = _encode(corpus, job.options.get("column"), params, tokenizer, encoded_dir)
    shutil.rmtree(out / "text", ignore_errors=True)
    return encoded


def _encode(
    corpus: str, column: str | None, params: Word2VecParams, tokenizer: str, encoded_dir: Path
) -> EncodedCorpus:
    documents = iter_documents(corpus, column)
    tokenize = _tokenize(tokenizer, documents, encoded_dir.parent)
    return encode_corpus(
        documents, encoded_dir, min_count=params.min_count, max_vocab=params.max_vocab,
        tokenize=tokenize,
    )  # fmt: skip


def run_job(
    dsn: str,
    job_id: int,
    artifacts: Path,
    limits: FetchLimits | None = None,
    threads: int | None = None,
) -> str | None:
    """Run one attempt of a job; returns its final state (None: nothing to do). Every error of
    the job's own making ends it as failed with the message: the worker goes on."""
    from upvote.embeddings.word2vec import train as train_vectors  # numba: only workers pay

    with job_lock(dsn, job_id) as mine, store.connect(dsn) as conn:
        if not mine:
            log.warning("job %s runs elsewhere already: skipped", job_id)
            return None
        job = store.start_job(conn, job_id, worker_name())
        if job is None:
            return None  # cancelled while queued, or finished by an earlier attempt
        log.info("job %s attempt %s started by %s", job_id, job.attempts, worker_name())
        out = artifacts / str(job_id)
        try:
            params, tokenizer = job_params(job.options)
            if threads is not None:
                params = replace(params, threads=threads)
            out.mkdir(parents=True, exist_ok=True)
            encoded = encoded_corpus(conn, job, params, tokenizer, out, limits or FetchLimits())
            if params.negative >= len(encoded.vocab):
                raise JobsError(
                    f"negative {params.negative} needs a vocabulary of more than that many "
                    f"words; this corpus has {len(encoded.vocab)} (lower negative or min_count)"
                )
            checkpoint = load_checkpoint(out)
            resumed = checkpoint[1]["epochs_done"] if checkpoint else 0
            if not store.set_state(conn, job_id, State.training):
                raise Cancelled  # cancelled (or deleted) while the corpus was fetched or encoded
            extra = {"resumed_from_epoch": resumed, "epochs": params.epochs}
            reporter = Reporter(
                conn, job_id, encoded.n_tokens * params.epochs, encoded.n_tokens * resumed, extra
            )
            vectors = train_vectors(encoded, params, checkpoint_dir=out, resume=True,
                                    progress=reporter)  # fmt: skip
            vectors.save_word2vec_format(out / "vectors.txt")
            meta = params.to_dict() | {"tokenizer": tokenizer, "vocabulary": len(vectors)}
            (out / "params.json").write_text(json.dumps(meta, indent=2))
            final_progress = reporter.final()
            names = evaluation_sets(job.options)
            if names:
                final_progress["evaluation"] = evaluate_job(vectors, names, out)
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
        now = store.get_job(conn, job_id)
        if now is None or now.deleted is not None:  # deleted while it ran (store.mark_deleted)
            shutil.rmtree(out, ignore_errors=True)
        return final.value
