"""`upvote jobs serve`: the whole embeddings service on one machine, in one command.

Without UPVOTE_JOBS_DATABASE_URL it starts a private PostgreSQL (embedded.py) and saves its URL
(0600) where the other `upvote jobs` commands find it; it applies the schemas, runs N
`upvote jobs worker` processes (restarting one that dies) and the HTTP API with uvicorn. Ctrl+C or
SIGTERM stops the API, then the workers, then the PostgreSQL it started. On many machines run
the pieces separately instead (docs/embeddings-service.md): `upvote jobs api` runs the HTTP API
alone, after the checks that would otherwise end uvicorn with a traceback.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import threading
import time

import psycopg
import typer

from upvote.console import fail
from upvote.redact import redact

API_FACTORY = "upvote.jobs.api.app:create_app"
WORKER_CHECK_S = 0.5  # how often dead workers are noticed and restarted


class Stop(Exception):
    """SIGTERM arrived: unwind to the clean shutdown."""


def _on_sigterm(signum, frame) -> None:
    raise Stop


def _save_url(dsn: str) -> None:
    """The embedded PostgreSQL's URL, readable by this user only."""
    from upvote.settings import get_settings

    path = get_settings().jobs_database_url_file
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(dsn + "\n")
    path.chmod(0o600)


def require_extra(api: bool) -> None:
    """One line, not an ImportError, when the `jobs` extra (Procrastinate, python-multipart for
    the API's uploads) is not installed."""
    try:
        importlib.import_module("upvote.jobs.queue")
        if api:
            importlib.import_module(API_FACTORY.split(":")[0])
    except ImportError as error:
        fail(f"upvote jobs needs its extra: pip install 'upvote[jobs]' ({error})")


class Workers:
    """N `upvote jobs worker` processes that share this process's environment (the DSN)."""

    def __init__(self, count: int, args: list[str]) -> None:
        self.args = [sys.executable, "-m", "upvote", "jobs", "worker", *args]
        self.procs = [subprocess.Popen(self.args) for _ in range(count)]
        self.lock, self.stopping = threading.Lock(), threading.Event()

    def revive_forever(self) -> None:
        """Restart any worker that died, until ``stop`` (runs beside the API in a thread)."""
        while not self.stopping.wait(WORKER_CHECK_S):
            with self.lock:
                for i, proc in enumerate(self.procs):
                    if proc.poll() is not None and not self.stopping.is_set():
                        typer.echo(
                            f"worker {proc.pid} exited ({proc.returncode}): restarting", err=True
                        )
                        self.procs[i] = subprocess.Popen(self.args)

    def stop(self, timeout: float) -> None:
        """SIGTERM (a worker finishes its job), then SIGKILL after timeout: the job of a killed
        worker goes back to the queue as stalled and resumes from its last epoch checkpoint."""
        self.stopping.set()
        with self.lock:  # no restart from here on
            procs = list(self.procs)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def serve(
    host: str = typer.Option("127.0.0.1", help="Address of the HTTP API."),
    port: int = typer.Option(8001, min=1, max=65535, help="Port of the HTTP API."),
    workers: int = typer.Option(1, min=0, help="Worker processes to run here."),
    concurrency: int = typer.Option(1, min=1, help="Jobs each worker trains at once."),
    threads: int | None = typer.Option(None, min=1, help="Training threads per job."),
    api: bool = typer.Option(True, "--api/--no-api", help="Run the HTTP API (or only workers)."),
    stop_timeout: float = typer.Option(
        30.0, min=0.0, help="Seconds stopping workers may take before they are killed."
    ),
) -> None:
    """Run the embeddings service on this machine: PostgreSQL (unless
    UPVOTE_JOBS_DATABASE_URL is set), the queue's workers and the HTTP API."""
    from upvote.jobs.embedded import EmbeddedError, EmbeddedPostgres
    from upvote.settings import get_settings

    require_extra(api)
    from upvote.jobs.artifacts import open_store
    from upvote.jobs.options import JobsError
    from upvote.jobs.queue import apply_schemas, make_app

    settings = get_settings()
    dsn, embedded = settings.jobs_database_url, None
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        open_store(settings)  # a bad UPVOTE_JOBS_ARTIFACTS_URL: one line here, not in uvicorn
        if not dsn:
            embedded = EmbeddedPostgres.at(settings.jobs_postgres_dir)
            dsn = embedded.start(settings.jobs_postgres_port).dsn
            _save_url(dsn)
        apply_schemas(make_app(dsn), dsn)
        os.environ["UPVOTE_JOBS_DATABASE_URL"] = dsn  # the workers and the API factory read it
        pool = Workers(workers, ["--concurrency", str(concurrency)]
                       + (["--threads", str(threads)] if threads else []))  # fmt: skip
        try:
            where = f", API on http://{host}:{port}" if api else ""
            typer.echo(
                f"jobs service ready: database {redact(dsn, dsn)}, {workers} worker(s){where}"
            )
            sys.stdout.flush()
            if api:
                import uvicorn

                threading.Thread(target=pool.revive_forever, daemon=True).start()
                uvicorn.run(API_FACTORY, factory=True, host=host, port=port)
            else:
                pool.revive_forever()
        except (KeyboardInterrupt, Stop):
            pass
        finally:
            pool.stop(stop_timeout)
    except (KeyboardInterrupt, Stop):
        pass
    except (EmbeddedError, JobsError) as error:
        fail(redact(str(error), dsn))
    except (psycopg.Error, OSError) as error:
        fail(redact(f"job database: {str(error).strip().splitlines()[0]}", dsn))
    finally:
        if embedded is not None and embedded.started:
            embedded.stop()
        signal.signal(signal.SIGTERM, previous)
    typer.echo("jobs service stopped")


def api(
    host: str = typer.Option("127.0.0.1", help="Address of the HTTP API (0.0.0.0 in a container)."),
    port: int = typer.Option(8001, min=1, max=65535, help="Port of the HTTP API."),
) -> None:
    """Run only the HTTP API, on the job database of UPVOTE_JOBS_DATABASE_URL (compose, many
    machines). A missing extra, database URL or a bad UPVOTE_JOBS_ARTIFACTS_URL is one line."""
    from upvote.settings import get_settings

    require_extra(api=True)
    from upvote.jobs.artifacts import open_store
    from upvote.jobs.options import JobsError, database_url

    settings = get_settings()
    try:
        dsn = database_url(settings.jobs_database_url)
        open_store(settings)
    except JobsError as error:
        fail(str(error))
    import uvicorn

    os.environ["UPVOTE_JOBS_DATABASE_URL"] = dsn  # the factory reads it (maybe from the file)
    uvicorn.run(API_FACTORY, factory=True, host=host, port=port)
