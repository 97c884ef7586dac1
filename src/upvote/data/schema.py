"""The canonical story table every stage reads, and the column aliases other HN exports use.

One schema for every source (PostgreSQL, Parquet, CSV, JSON lines, the shipped sample), so later
stages never guess at column names or types.
"""

import pandas as pd
import pyarrow as pa

# Column -> pandas dtype. `time` is naive UTC (as in hacker_news.items); NaT means "no time known".
COLUMNS: dict[str, str] = {
    "id": "Int64",
    "type": "str",
    "by": "str",
    "time": "datetime64[ns]",
    "title": "str",
    "url": "str",
    "score": "Int64",
    "descendants": "Int64",
    "source": "str",
    "selection": "str",
}

# `selection`: how a row was sampled. Only `unfiltered` (every story of a period) and
# `random_sample` rows are an unbiased picture of HN; the others over-represent popular stories
# (`commented_only`: stories with >= 1 comment; `top_only`: daily top stories) or have no time.
UNFILTERED = "unfiltered"
SELECTIONS = (UNFILTERED, "random_sample", "commented_only", "top_only", "unknown")
UNBIASED = (UNFILTERED, "random_sample")

# Optional columns added by `upvote data pull --with-users` (today's values: they leak the future).
USER_COLUMNS: dict[str, str] = {"author_karma": "Int64", "author_created": "datetime64[ns]"}

# Names used by the HN API, Algolia, Kaggle and BigQuery exports -> our names.
ALIASES: dict[str, str] = {
    "objectID": "id",
    "object_id": "id",
    "num_points": "score",
    "points": "score",
    "num_comments": "descendants",
    "author": "by",
    "created_at": "time",
}

ARROW_TYPES: dict[str, pa.DataType] = {
    "Int64": pa.int64(),
    "str": pa.string(),
    "datetime64[ns]": pa.timestamp("ns"),
}


def arrow_schema(with_users: bool = False) -> pa.Schema:
    """The Parquet schema of a pulled dataset part."""
    columns = COLUMNS | (USER_COLUMNS if with_users else {})
    return pa.schema([(name, ARROW_TYPES[dtype]) for name, dtype in columns.items()])


def rename_aliases(df: pd.DataFrame) -> pd.DataFrame:
    """Rename alias columns to canonical names; an alias is ignored if the canonical name exists."""
    renames = {
        alias: name
        for alias, name in ALIASES.items()
        if alias in df.columns and name not in df.columns
    }
    return df.rename(columns=renames)


def empty_stories() -> pd.DataFrame:
    """A zero-row frame with the canonical columns and dtypes."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in COLUMNS.items()})
