"""`upvote data pull` and `upvote data stats`."""

import time
from datetime import datetime
from pathlib import Path

import typer

from upvote.console import fail
from upvote.data.dataset import default_dataset_dir, load_stories, pull
from upvote.data.files import DataError
from upvote.data.sources import Query, is_postgres
from upvote.data.stats import describe
from upvote.redact import redact
from upvote.settings import get_settings

app = typer.Typer(no_args_is_help=True)


def _fraction(value: float | None) -> float | None:
    if value is not None and not 0 < value <= 1:
        raise typer.BadParameter(f"must be in (0, 1], got {value}")
    return value


@app.command("pull")
def pull_command(
    source: str | None = typer.Option(
        None,
        help="postgresql://user:pass@host:port/db, or a .parquet/.csv/.jsonl file "
        "[default: $DATABASE_URL]",
    ),
    since: datetime | None = typer.Option(
        None,
        help="Only stories at or after TIME (UTC) [default for PostgreSQL: the newest time "
        "already pulled]",
    ),
    until: datetime | None = typer.Option(None, help="Only stories before TIME (UTC)."),
    limit: int | None = typer.Option(None, min=1, help="At most N stories (the oldest first)."),
    sample: float | None = typer.Option(
        None, callback=_fraction, help="Keep a random FRACTION of the stories (0 < f <= 1)."
    ),
    with_users: bool = typer.Option(
        False,
        help="Join hacker_news.users (author_karma, author_created). LEAKS THE FUTURE: "
        "karma is today's value, not the value when the story was posted.",
    ),
    batch_size: int = typer.Option(25_000, min=1, help="Rows per server round trip."),
    dataset: Path | None = typer.Option(
        None, help="Dataset folder [default: $UPVOTE_DATA_DIR/datasets/stories]"
    ),
) -> None:
    """Pull HN stories into the local dataset, cleaning them and printing what was dropped."""
    settings = get_settings()
    source = source or settings.database_url
    if source is None:
        fail("no source: pass --source postgresql://... or a file, or set DATABASE_URL")
    if with_users and not is_postgres(source):
        fail("--with-users needs a PostgreSQL source")
    query = Query(since, until, limit, sample, with_users, settings.seed)

    def progress(batch: int, written: int) -> None:
        typer.echo(f"batch {batch}: {written:,} new rows written", err=True)

    start = time.perf_counter()
    try:
        result = pull(source, query, dataset, batch_size, on_batch=progress)
    except DataError as exc:
        fail(redact(str(exc), source))
    seconds = time.perf_counter() - start
    typer.echo(result.report.summary())
    typer.echo(f"pulled in {seconds:.2f} s ({result.report.rows_in / seconds:,.0f} rows/s)")
    where = result.part or "nothing new; dataset unchanged"
    typer.echo(f"-> {where} ({dataset or default_dataset_dir()})")


@app.command("stats")
def stats_command(
    path: Path | None = typer.Option(
        None, help="Dataset folder or Parquet file [default: the pulled dataset, else the sample]"
    ),
) -> None:
    """Counts, time span, score quantiles and a breakdown by selection."""
    try:
        df = load_stories(path)
    except DataError as exc:
        fail(str(exc))
    typer.echo(describe(df))


if (
    __name__ == "__main__"
):  # `python -m upvote.data.cli`: the data stage without the others' imports
    app()
