"""`upvote jobs token create|list|revoke`: the API tokens of the embedding jobs service.

A token is printed once, by `create`, and stored only as its hash (tokens.py); `list` shows
names, dates and quotas, never a token or a hash. Errors are one line, the database password
masked.
"""

from __future__ import annotations

import contextlib
import re

import psycopg
import typer

from upvote.console import fail
from upvote.redact import redact

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

DATABASE = typer.Option(
    None, "--database", help="PostgreSQL URL of the queue (default: UPVOTE_JOBS_DATABASE_URL)."
)
UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'20GiB', '20G', '500MB', '1024' -> bytes (binary units: a G is 2**30)."""
    match = SIZE.fullmatch(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"--max-bytes: not a size: {text!r} (e.g. 20GiB, 500M, 1048576)")
    return int(float(match.group(1)) * UNITS[match.group(2).lower()])


@contextlib.contextmanager
def _database(database: str | None):
    """An open connection with the tables in place; failures as one line, password masked."""
    from upvote.jobs.options import JobsError, database_url
    from upvote.jobs.store import connect
    from upvote.jobs.tokens import TokenError, apply_schema

    dsn = database
    try:
        dsn = database_url(database)
        with connect(dsn) as conn:
            apply_schema(conn)
            yield conn
    except (JobsError, TokenError) as error:
        fail(redact(str(error), dsn))
    except (psycopg.Error, OSError) as error:
        fail(redact(f"job database: {str(error).strip().splitlines()[0]}", dsn))


@app.command()
def create(
    name: str = typer.Argument(..., help="Who the token is for; it owns the jobs it creates."),
    max_jobs: int | None = typer.Option(
        None, min=1, help="Jobs not finished at once (default: UPVOTE_JOBS_MAX_CONCURRENT_JOBS)."
    ),
    max_bytes: str | None = typer.Option(
        None, help="Corpus bytes of all its jobs, e.g. 20GiB (default: UPVOTE_JOBS_MAX_BYTES)."
    ),
    database: str | None = DATABASE,
) -> None:
    """Create a token and print it: it is shown this once and stored only hashed."""
    from upvote.jobs.tokens import create_token

    try:
        size = parse_size(max_bytes) if max_bytes is not None else None
    except ValueError as error:
        fail(str(error))
    with _database(database) as conn:
        token = create_token(conn, name, max_jobs, size)
    typer.echo(token)


@app.command("list")
def list_(database: str | None = DATABASE) -> None:
    """Tokens: name, created, revoked, quota (never the token or its hash)."""
    from upvote.jobs.tokens import list_tokens

    with _database(database) as conn:
        rows = list_tokens(conn)
    for token in rows:
        revoked = token.revoked.isoformat(timespec="seconds") if token.revoked else "-"
        jobs = token.max_concurrent_jobs if token.max_concurrent_jobs is not None else "default"
        size = token.max_bytes if token.max_bytes is not None else "default"
        created = token.created.isoformat(timespec="seconds")
        typer.echo(f"{token.name}\t{created}\trevoked={revoked}\tmax_jobs={jobs}\tmax_bytes={size}")


@app.command()
def revoke(name: str = typer.Argument(...), database: str | None = DATABASE) -> None:
    """Revoke a token: its next request gets a 401; its jobs are left as they are."""
    from upvote.jobs.tokens import revoke_token

    with _database(database) as conn:
        revoke_token(conn, name)
    typer.echo(f"revoked {name}")
