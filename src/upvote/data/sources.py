"""Where stories come from: the production PostgreSQL database (streamed) or a local file.

PostgreSQL rows are streamed by the server (``COPY (SELECT ...) TO STDOUT``) and parsed into Arrow
tables ``batch_size`` rows at a time: the client never holds more than about one batch, whatever
the size of ``hacker_news.items``. The session has a lock timeout and a statement timeout
(``UPVOTE_PG_LOCK_TIMEOUT``, ``UPVOTE_PG_STATEMENT_TIMEOUT``): a locked table is an error, not a
wait forever. Files (.parquet, .csv, .jsonl) are streamed in bounded chunks by ``stream.py``.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import errors, sql
from pydantic import ValidationError

from upvote.data.files import DataError, read_table, reason
from upvote.data.schema import ARROW_TYPES, COLUMNS, USER_COLUMNS, rename_aliases
from upvote.redact import redact
from upvote.settings import Settings

# Seconds; 0 turns a timeout off. A pull is one COPY statement: the statement timeout bounds the
# whole pull (a full 41M-row pull takes minutes), the lock timeout how long it waits on a lock
# (an ALTER TABLE, TRUNCATE or VACUUM FULL holding hacker_news.items).

POSTGRES_PREFIXES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class Query:
    """What to pull: the usual story filters plus an optional time window, limit and sample."""

    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None
    sample: float | None = None  # fraction of rows, Bernoulli sampling on the server
    with_users: bool = False
    seed: int = 0


def is_postgres(source: str) -> bool:
    return source.startswith(POSTGRES_PREFIXES)


def timeouts() -> dict[str, float]:
    """The PostgreSQL timeouts of a pull or an SQL corpus (seconds), from ``Settings`` read now
    (not the cached copy: a test or a caller may have just set the variable)."""
    try:
        settings = Settings()
    except ValidationError as err:
        problem = err.errors()[0]
        name = "UPVOTE_" + str(problem["loc"][0]).upper()
        raise DataError(f"{name}: {problem['msg']} (seconds, 0: no timeout)") from None
    return {
        "UPVOTE_PG_LOCK_TIMEOUT": settings.pg_lock_timeout,
        "UPVOTE_PG_STATEMENT_TIMEOUT": settings.pg_statement_timeout,
    }


def set_timeouts(conn: psycopg.Connection) -> None:
    """Apply ``timeouts()`` to the session (``SET`` at session level, so a COPY gets them)."""
    limits = timeouts()
    for setting, name in (("lock_timeout", "UPVOTE_PG_LOCK_TIMEOUT"),
                          ("statement_timeout", "UPVOTE_PG_STATEMENT_TIMEOUT")):  # fmt: skip
        conn.execute(
            "SELECT set_config(%s, %s, false)", (setting, f"{round(limits[name] * 1000)}ms")
        )


def timeout_message(exc: psycopg.Error) -> str | None:
    """A one-line explanation when ``exc`` is a lock or statement timeout, else None."""
    limits = timeouts()
    if isinstance(exc, errors.LockNotAvailable):
        name = "UPVOTE_PG_LOCK_TIMEOUT"
        return (f"waited {limits[name]:g} s for a lock held by another session (a table being "
                f"altered, truncated or vacuumed?); try again later or raise {name}")  # fmt: skip
    if isinstance(exc, errors.QueryCanceled) and "statement timeout" in str(exc):
        name = "UPVOTE_PG_STATEMENT_TIMEOUT"
        return (f"the query ran longer than {name}={limits[name]:g} s; narrow it (--since, "
                f"--until, --limit) or raise {name} (0: no limit)")  # fmt: skip
    return None


def story_sql(query: Query) -> sql.Composed:
    """The SELECT run on the server (also used verbatim by the COPY baseline of the benchmark).

    Ordered by time so that `--limit` takes the oldest rows and the next incremental pull (which
    starts at the newest time pulled) misses nothing.
    """
    columns = sql.SQL(", ").join(
        sql.SQL("i.{}").format(sql.Identifier(c))
        for c in COLUMNS
        if c not in ("source", "selection")
    )
    if query.with_users:
        columns = sql.SQL("{}, u.karma AS author_karma, u.created AS author_created").format(
            columns
        )
    table = sql.SQL("hacker_news.items i")
    if query.sample is not None:
        table = sql.SQL("hacker_news.items i TABLESAMPLE BERNOULLI ({}) REPEATABLE ({})").format(
            sql.Literal(query.sample * 100), sql.Literal(query.seed)
        )
    if query.with_users:
        table = sql.SQL("{} LEFT JOIN hacker_news.users u ON u.id = i.by").format(table)
    where = [sql.SQL("i.type = 'story' AND i.title IS NOT NULL AND i.dead IS NOT TRUE")]
    if query.since is not None:
        # Undated stories cannot be placed before `since`: keep them (they dedup by id).
        where.append(sql.SQL("(i.time >= {} OR i.time IS NULL)").format(sql.Literal(query.since)))
    if query.until is not None:
        where.append(sql.SQL("i.time < {}").format(sql.Literal(query.until)))
    statement = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY i.time, i.id").format(
        columns, table, sql.SQL(" AND ").join(where)
    )
    if query.limit is not None:
        statement = sql.SQL("{} LIMIT {}").format(statement, sql.Literal(query.limit))
    return statement


def postgres_batches(dsn: str, query: Query, batch_size: int = 25_000) -> Iterator[pa.Table]:
    """Stream the stories of ``query`` as Arrow tables of at most ``batch_size`` rows.

    The server streams ``COPY (<story_sql>) TO STDOUT (FORMAT csv)``, one message per row; every
    ``batch_size`` rows are parsed at once by Arrow's CSV reader, so memory stays bounded by a
    batch. This is faster than fetching Python tuples from a named cursor (benchmarks/ingest.py;
    figures in benchmarks/RESULTS.md, "Ingest"). Rows get ``source="postgresql"`` and
    ``selection="unfiltered"`` (every story of the window), or ``"random_sample"`` with
    ``--sample``.
    """
    selection = "random_sample" if query.sample is not None else "unfiltered"
    names = [c for c in COLUMNS if c not in ("source", "selection")]
    names += list(USER_COLUMNS) if query.with_users else []
    dtypes = COLUMNS | USER_COLUMNS
    types = {n: ARROW_TYPES[dtypes[n]] for n in names}
    # PostgreSQL timestamps Arrow cannot parse ('infinity', year 1, 9999, BC dates): a batch that
    # holds one is parsed again with its times as text, and cleaning drops and counts those rows.
    as_text = types | {n: pa.string() for n, t in types.items() if pa.types.is_timestamp(t)}

    def options(column_types: dict) -> dict:
        return {
            "read_options": pacsv.ReadOptions(column_names=names, use_threads=False),
            "parse_options": pacsv.ParseOptions(newlines_in_values=True),
            "convert_options": pacsv.ConvertOptions(
                column_types=column_types,
                strings_can_be_null=True,  # COPY writes NULL as an unquoted empty field ...
                quoted_strings_can_be_null=False,  # ... and '' as "", which must stay ''
            ),
        }

    typed, textual = options(types), options(as_text)

    def parse(rows: list) -> pa.Table:
        data = pa.py_buffer(b"".join(rows))
        try:
            table = pacsv.read_csv(data, **typed)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            try:
                table = pacsv.read_csv(data, **textual)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                why = reason(exc)
                raise DataError(redact(f"{dsn}: rows that cannot be parsed: {why}", dsn)) from None
        constant = pa.array([selection], pa.string())
        indices = pa.array([0] * table.num_rows, pa.int32())
        return table.append_column(
            "source", pa.array(["postgresql"], pa.string()).take(indices)
        ).append_column("selection", constant.take(indices))

    try:
        conn = psycopg.connect(dsn, connect_timeout=10)
    except psycopg.Error as exc:
        raise DataError(redact(f"cannot connect to {dsn}: {str(exc).strip()}", dsn)) from None
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(story_sql(query))
    with conn, conn.cursor() as cursor:
        try:
            set_timeouts(conn)
            with cursor.copy(statement) as copy:
                rows = []
                for row in copy:  # one CSV row per COPY message, even with newlines in values
                    rows.append(bytes(row))
                    if len(rows) == batch_size:
                        yield parse(rows)
                        rows = []
                if rows:
                    yield parse(rows)
        except psycopg.Error as exc:
            why = timeout_message(exc) or str(exc).strip().splitlines()[0]
            raise DataError(redact(f"query on {dsn} failed: {why}", dsn)) from None


def read_file(path: Path) -> pd.DataFrame:
    """A stories file (see ``files.read_table``) with canonical column names, values unparsed.

    The index is the row number (1 = first data row) so errors can name the row.
    """
    df = read_table(path, as_text=True)
    df.index = pd.RangeIndex(1, len(df) + 1)
    return rename_aliases(df)


def story_outcomes(dsn: str, ids: list[int], titles: list[str]) -> pd.DataFrame:
    """The stories of ``hacker_news.items`` with one of these ids or titles, as they are now:
    id, title, time (UTC) and score. `upvote monitor` reads the scores that settled after a
    prediction was served; an incremental pull never re-reads a story it already has."""
    query = sql.SQL(
        'SELECT id, title, "time", score FROM hacker_news.items '
        "WHERE type = 'story' AND (id = ANY(%s) OR title = ANY(%s))"
    )
    try:
        conn = psycopg.connect(dsn, connect_timeout=10)
    except psycopg.Error as exc:
        raise DataError(redact(f"cannot connect to {dsn}: {str(exc).strip()}", dsn)) from None
    with conn, conn.cursor() as cursor:
        try:
            set_timeouts(conn)
            cursor.execute(query, (list(ids), list(titles)))
            rows = cursor.fetchall()
        except psycopg.Error as exc:
            why = timeout_message(exc) or str(exc).strip().splitlines()[0]
            raise DataError(redact(f"query on {dsn} failed: {why}", dsn)) from None
    frame = pd.DataFrame(rows, columns=["id", "title", "time", "score"])
    frame["time"] = pd.to_datetime(frame["time"]).dt.tz_localize(None)
    return frame
