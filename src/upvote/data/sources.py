"""Where stories come from: the production PostgreSQL database (streamed) or a local file.

PostgreSQL rows are streamed by the server (``COPY (SELECT ...) TO STDOUT``) and parsed into Arrow
tables ``batch_size`` rows at a time: the client never holds more than about one batch, whatever
the size of ``hacker_news.items``. Files (.parquet, .csv, .jsonl, .txt; read by ``files.py``) are
read whole; they are exports, not the 41M-row production table.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from upvote.data.files import DataError, read_table
from upvote.data.schema import ARROW_TYPES, COLUMNS, USER_COLUMNS, rename_aliases

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


def redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    return re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", dsn)


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
    options = {
        "read_options": pacsv.ReadOptions(column_names=names, use_threads=False),
        "parse_options": pacsv.ParseOptions(newlines_in_values=True),
        "convert_options": pacsv.ConvertOptions(
            column_types={n: ARROW_TYPES[dtypes[n]] for n in names},
            strings_can_be_null=True,  # COPY writes NULL as an unquoted empty field ...
            quoted_strings_can_be_null=False,  # ... and '' as "", which must stay ''
        ),
    }

    def parse(rows: list) -> pa.Table:
        table = pacsv.read_csv(pa.py_buffer(b"".join(rows)), **options)
        constant = pa.array([selection], pa.string())
        indices = pa.array([0] * table.num_rows, pa.int32())
        return table.append_column(
            "source", pa.array(["postgresql"], pa.string()).take(indices)
        ).append_column("selection", constant.take(indices))

    try:
        conn = psycopg.connect(dsn, connect_timeout=10)
    except psycopg.Error as exc:
        raise DataError(f"cannot connect to {redact(dsn)}: {str(exc).strip()}") from None
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(story_sql(query))
    with conn, conn.cursor() as cursor:
        try:
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
            raise DataError(f"query on {redact(dsn)} failed: {str(exc).strip()}") from None


def read_file(path: Path) -> pd.DataFrame:
    """A stories file (see ``files.read_table``) with canonical column names, values unparsed.

    The index is the row number (1 = first data row) so errors can name the row.
    """
    df = read_table(path, as_text=True)
    df.index = pd.RangeIndex(1, len(df) + 1)
    return rename_aliases(df)
