"""`upvote jobs init|worker|submit|status|list|cancel|token`: the word2vec job queue from a shell.

The database is UPVOTE_JOBS_DATABASE_URL (or --database); workers on any number of machines
share it. Errors are one line (the database URL's password masked), never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

import psycopg
import typer

from upvote.console import fail
from upvote.jobs import token_cli
from upvote.jobs.serve_cli import api, serve
from upvote.redact import redact

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(token_cli.app, name="token", help="API tokens: create, list, revoke.")
app.command()(serve)
app.command()(api)

DATABASE = typer.Option(
    None, "--database", help="PostgreSQL URL of the queue (default: UPVOTE_JOBS_DATABASE_URL)."
)


@contextlib.contextmanager
def _errors(dsn: str | None):
    """Turn the queue's expected failures into one-line errors with the password masked."""
    from upvote.jobs.options import JobsError

    try:
        yield
    except typer.Exit:
        raise
    except JobsError as error:
        fail(redact(str(error), dsn))
    except (psycopg.Error, OSError) as error:
        fail(redact(f"job database: {str(error).strip().splitlines()[0]}", dsn))


def _setup(database: str | None, threads: int | None = None):
    """(app, dsn); the queue module (procrastinate) loads only when a command runs."""
    try:
        from upvote.jobs.options import database_url
        from upvote.jobs.queue import make_app
    except ImportError as error:
        fail(f"upvote jobs needs Procrastinate: pip install 'upvote[jobs]' ({error})")
    with _errors(database):
        dsn = database_url(database)
        return make_app(dsn, threads=threads), dsn


@app.command()
def init(database: str | None = DATABASE) -> None:
    """Create the queue's tables and ours (safe to run again)."""
    from upvote.jobs.queue import apply_schemas

    queue_app, dsn = _setup(database)
    with _errors(dsn):
        apply_schemas(queue_app, dsn)
    typer.echo(f"job queue ready in {redact(dsn, dsn)}")


@app.command()
def worker(
    database: str | None = DATABASE,
    concurrency: int = typer.Option(1, min=1, help="Jobs this worker trains at once."),
    heartbeat: float = typer.Option(
        10.0, min=0.1, help="Seconds between this worker's heartbeats."
    ),
    stalled_after: float = typer.Option(
        60.0,
        min=0.5,
        help="Seconds without a heartbeat after which another worker's jobs are re-queued.",
    ),
    threads: int | None = typer.Option(
        None, min=1, help="Training threads per job (default: `upvote embed train`'s)."
    ),
) -> None:
    """Train queued jobs until stopped (Ctrl+C / SIGTERM); re-queue the jobs of dead workers."""
    from upvote.jobs.artifacts import open_store
    from upvote.jobs.queue import sweep_scratch, work
    from upvote.settings import get_settings

    if stalled_after <= heartbeat:
        fail("--stalled-after must be longer than --heartbeat (live workers would look dead)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    queue_app, dsn = _setup(database, threads)
    with _errors(dsn):
        removed = sweep_scratch(dsn, open_store(get_settings()))
        if removed:
            logging.getLogger(__name__).info("scratch folders of ended jobs removed: %s", removed)
        asyncio.run(work(queue_app, concurrency, heartbeat, stalled_after))


@app.command()
def submit(
    corpus: str = typer.Argument(
        ...,
        help="An http(s) URL (fetched by the worker: text, .gz/.bz2/.xz, .zip/.tar, Parquet) or a "
        "local file (text, gzip or Parquet) the workers can read.",
    ),
    database: str | None = DATABASE,
    owner: str = typer.Option("", help="Who the job belongs to."),
    model: str | None = typer.Option(None, help="sg or cbow (default: sg)."),
    tokenizer: str | None = typer.Option(None, help="word or sentencepiece (default: word)."),
    dim: int | None = typer.Option(None, min=1, help="Vector size."),
    window: int | None = typer.Option(None, min=1, help="Maximum context window."),
    negative: int | None = typer.Option(None, min=0, help="Noise words per example."),
    min_count: int | None = typer.Option(None, min=1, help="Drop words rarer than this."),
    sample: float | None = typer.Option(None, min=0.0, help="Sub-sampling threshold."),
    epochs: int | None = typer.Option(None, min=1, help="Passes over the corpus."),
    column: str | None = typer.Option(None, help="Parquet corpus: the text column."),
    evaluation: list[str] = typer.Option(
        [],
        help="Score the vectors on a standard set after training (repeatable): analogy, "
        "wordsim353, simlex999; results in evaluation.json beside the vectors.",
    ),
) -> None:
    """Queue a word2vec job and print its id; options left out keep `embed train`'s defaults."""
    from upvote.jobs.options import is_url
    from upvote.jobs.queue import submit as submit_job

    if not is_url(corpus):
        if not Path(corpus).is_file():
            fail(f"corpus not found: {corpus}")
        corpus = str(Path(corpus).resolve())
    given = {
        "model": model, "tokenizer": tokenizer, "dim": dim, "window": window,
        "negative": negative, "min_count": min_count, "sample": sample, "epochs": epochs,
        "column": column,
    }  # fmt: skip
    options = {k: v for k, v in given.items() if v is not None}
    if evaluation:
        options["evaluation"] = evaluation
    queue_app, dsn = _setup(database)
    with _errors(dsn):
        job_id = submit_job(queue_app, dsn, corpus, options, owner)
    typer.echo(job_id)


def _open(database: str | None):
    from upvote.jobs.options import database_url
    from upvote.jobs.store import connect

    with _errors(database):
        dsn = database_url(database)
        return connect(dsn), dsn


@app.command()
def status(job_id: int = typer.Argument(...), database: str | None = DATABASE) -> None:
    """One job as JSON: state, progress, worker, attempts, error."""
    from upvote.jobs.store import get_job

    conn, dsn = _open(database)
    with _errors(dsn), conn:
        job = get_job(conn, job_id)
    if job is None:
        fail(f"no job {job_id}")
    typer.echo(json.dumps(job.to_dict(), indent=2))


@app.command("list")
def list_(
    database: str | None = DATABASE,
    owner: str | None = typer.Option(None, help="Only this owner's jobs."),
    state: str | None = typer.Option(None, help="Only jobs in this state."),
    limit: int = typer.Option(20, min=1),
    offset: int = typer.Option(0, min=0),
) -> None:
    """Jobs, newest first: id, state, progress, corpus."""
    from upvote.jobs.store import State, list_jobs

    if state is not None and state not in State.__members__:
        fail(f"--state must be one of {', '.join(State.__members__)}, not {state!r}")
    conn, dsn = _open(database)
    with _errors(dsn), conn:
        jobs = list_jobs(conn, owner, State(state) if state else None, limit, offset)
    for job in jobs:
        fraction = job.progress.get("fraction", 0.0)
        typer.echo(f"{job.id}\t{job.state.value}\t{fraction:6.1%}\t{job.corpus}")


@app.command()
def cancel(job_id: int = typer.Argument(...), database: str | None = DATABASE) -> None:
    """Cancel a job: a queued one never runs, a running one stops within about a second."""
    from upvote.jobs.store import cancel_job

    conn, dsn = _open(database)
    with _errors(dsn), conn:
        job = cancel_job(conn, job_id)
    if job is None:
        fail(f"no job {job_id}")
    typer.echo(job.state.value)
