"""Cleaning rules for HN stories: every dropped or repaired row is counted in a CleaningReport.

Rows are dropped when they cannot be a usable story (not a story, dead, no title, an empty or
absurdly long title, a negative score, a duplicate); values are repaired when the row stays useful
(HTML entities in titles are unescaped, bad timestamps become NaT and the row goes to `undated`).
Nothing disappears without a count: ``rows_in == rows_out + dropped`` always holds.
"""

import html
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from upvote.data.files import DataError
from upvote.data.schema import COLUMNS, USER_COLUMNS

MAX_TITLE_CHARS = 255  # hacker_news.items.title is varchar(255); HN itself allows 80
FIRST_HN_TIME = pd.Timestamp("2006-10-01")  # HN's first items are from 2006-10-09


@dataclass
class CleaningReport:
    """Counts of what cleaning did; ``+=`` adds up the reports of successive batches."""

    rows_in: int = 0
    not_story: int = 0
    dead: int = 0
    missing_title: int = 0
    empty_title: int = 0
    absurd_title: int = 0
    negative_score: int = 0
    duplicate: int = 0
    already_in_dataset: int = 0
    not_requested: int = 0  # outside --since/--until, not sampled or past --limit (file sources)
    rows_out: int = 0
    html_unescaped: int = 0  # repaired, kept
    bad_time: int = 0  # unparseable or impossible timestamp: set to NaT, kept (undated)
    undated: int = 0  # kept rows without a time

    DROPS = ("not_story", "dead", "missing_title", "empty_title", "absurd_title",
             "negative_score", "duplicate", "already_in_dataset", "not_requested")  # fmt: skip

    @property
    def dropped(self) -> int:
        return sum(getattr(self, name) for name in self.DROPS)

    def __iadd__(self, other: "CleaningReport") -> "CleaningReport":
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def summary(self) -> str:
        """A short human-readable table, printed by `upvote data pull`."""
        lines = [f"rows read            {self.rows_in:>12,}"]
        lines += [
            f"  dropped {n:<19}{getattr(self, n):>9,}" for n in self.DROPS if getattr(self, n)
        ]
        lines.append(f"rows kept            {self.rows_out:>12,}")
        for name in ("html_unescaped", "bad_time", "undated"):
            if getattr(self, name):
                lines.append(f"  fixed {name:<20}{getattr(self, name):>9,}")
        return "\n".join(lines)


def _parse_times(values: pd.Series) -> pd.Series:
    """Datetimes, unix seconds or date strings -> naive UTC datetime64[ns]; unparseable -> NaT."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        times = values.dt.tz_convert(None) if values.dt.tz is not None else values
        return times.astype("datetime64[ns]")
    numeric = pd.to_numeric(values, errors="coerce")
    if values.notna().any() and numeric.notna().sum() == values.notna().sum():
        return pd.to_datetime(numeric, unit="s", errors="coerce").astype("datetime64[ns]")
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return parsed.dt.tz_convert(None).astype("datetime64[ns]")


def _to_int(values: pd.Series, column: str, where: str) -> pd.Series:
    if pd.api.types.is_integer_dtype(values.dtype):  # already typed (PostgreSQL, Parquet)
        return values.astype("Int64")
    numeric = pd.to_numeric(values, errors="coerce")
    suspect = numeric.isna() & values.notna()
    bad = suspect & (values[suspect].astype("str").str.strip() != "").reindex(
        values.index, fill_value=False
    )
    bad |= numeric.notna() & (numeric != np.floor(numeric.fillna(0)))
    if bad.any():
        row = bad.idxmax()
        raise DataError(f"{where}: row {row}: column {column!r}: not an integer: {values[row]!r}")
    return numeric.astype("Int64")


def coerce(df: pd.DataFrame, where: str = "input") -> tuple[pd.DataFrame, int]:
    """Cast canonical columns to their dtypes (missing ones become NA); return (frame, bad times).

    ``where`` names the input in error messages; the frame's index is the row number reported.
    """
    if "title" not in df.columns:
        raise DataError(f"{where}: no 'title' column (columns: {', '.join(map(str, df.columns))})")
    out = pd.DataFrame(index=df.index)
    for name, dtype in COLUMNS.items():
        values = df[name] if name in df.columns else pd.Series(pd.NA, index=df.index)
        if dtype == "Int64":
            out[name] = _to_int(values, name, where)
        elif name == "time":
            out[name] = _parse_times(values)
        elif values.dtype == "str":
            out[name] = values
        else:
            out[name] = values.astype("str").where(values.notna(), None).astype("str")
    unparseable = out["time"].isna() & df["time"].notna() if "time" in df.columns else False
    latest = pd.Timestamp.now() + pd.Timedelta(days=1)
    impossible = (out["time"] < FIRST_HN_TIME) | (out["time"] > latest)
    out.loc[impossible, "time"] = pd.NaT
    for name in ("dead", *USER_COLUMNS):
        if name in df.columns:
            out[name] = df[name]
    return out, int((unparseable | impossible).sum())


def clean(df: pd.DataFrame, where: str = "input") -> tuple[pd.DataFrame, CleaningReport]:
    """Coerce types, drop unusable rows and repair fixable ones; return (stories, report)."""
    report = CleaningReport(rows_in=len(df))
    df, report.bad_time = coerce(df, where)

    dropped = pd.Series(False, index=df.index)

    def drop(mask: pd.Series, counter: str) -> None:
        # Rules are checked in order; a row is counted under the first rule it breaks.
        nonlocal dropped
        mask = mask & ~dropped
        setattr(report, counter, int(mask.sum()))
        dropped |= mask

    drop(df["type"].notna() & (df["type"] != "story"), "not_story")
    if "dead" in df.columns:
        dead = df.pop("dead")
        drop(dead.map(_truthy, na_action="ignore").fillna(False).astype(bool), "dead")
    drop(df["title"].isna(), "missing_title")
    title = df["title"].fillna("")
    needs_unescape = title.str.contains("&", regex=False) & ~dropped
    unescaped = title.where(~needs_unescape, title[needs_unescape].map(html.unescape))
    report.html_unescaped = int((unescaped != title).sum())
    df["title"] = unescaped.str.strip()
    drop(df["title"] == "", "empty_title")
    drop(df["title"].str.len() > MAX_TITLE_CHARS, "absurd_title")
    drop(df["score"].fillna(0) < 0, "negative_score")
    if dropped.any():  # filtering copies every string column: skip it when there is nothing to drop
        df = df[~dropped]
    duplicate = pd.Series(row_keys(df), index=df.index).duplicated()
    report.duplicate = int(duplicate.sum())
    if report.duplicate:
        df = df[~duplicate]
    report.rows_out = len(df)
    report.undated = int(df["time"].isna().sum())
    return df, report


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in ("true", "t", "1", "yes")


def row_keys(df: pd.DataFrame) -> np.ndarray:
    """The identity of each story: its id, or a content hash (title, by, time) when it has none.

    The hash keeps id-less rows (like the shipped `unknown` selection) from piling up when the same
    file is pulled twice.
    """
    keys = df["id"].to_numpy(dtype="int64", na_value=0).astype(np.uint64)
    no_id = df["id"].isna().to_numpy()
    if no_id.any():
        content = df.loc[no_id, ["title", "by", "time"]]
        keys[no_id] = pd.util.hash_pandas_object(content, index=False).to_numpy()
    return keys
