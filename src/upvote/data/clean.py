"""Cleaning rules for HN stories: every dropped or repaired row is counted in a CleaningReport.

Rows are dropped when they cannot be a usable story (not a story, dead, no title, an empty or
absurdly long title, a negative score, a value no column can hold, a duplicate); values are
repaired when the row stays useful (HTML entities in titles are unescaped, bad timestamps become
NaT and the row goes to `undated`).
Nothing disappears without a count: ``rows_in == rows_out + dropped`` always holds.
"""

import html
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np
import pandas as pd

from upvote.data.files import DataError, shorten
from upvote.data.schema import COLUMNS, USER_COLUMNS

MAX_TITLE_CHARS = 255  # hacker_news.items.title is varchar(255); HN itself allows 80
FIRST_HN_TIME = pd.Timestamp("2006-10-01")  # HN's first items are from 2006-10-09
# What datetime64[ns] can hold (1677-09-21 .. 2262-04-11): a time outside it (PostgreSQL's
# 'infinity', year 1, year 9999, unix seconds like 1e20) cannot be stored, the row is dropped.
MIN_TIME, MAX_TIME = pd.Timestamp.min, pd.Timestamp.max
INT64_MAX = 2**63 - 1
INFINITIES = frozenset({"infinity", "-infinity", "+infinity", "inf", "-inf", "+inf"})


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
    out_of_range: int = 0  # infinite or unrepresentable time, id/score beyond int64 or infinite
    duplicate: int = 0
    already_in_dataset: int = 0
    not_requested: int = 0  # outside --since/--until, not sampled or past --limit (file sources)
    rows_out: int = 0
    html_unescaped: int = 0  # repaired, kept
    bad_time: int = 0  # unparseable or impossible timestamp: set to NaT, kept (undated)
    undated: int = 0  # kept rows without a time

    DROPS = ("not_story", "dead", "missing_title", "empty_title", "absurd_title",
             "negative_score", "out_of_range", "duplicate", "already_in_dataset",
             "not_requested")  # fmt: skip
    REASONS: ClassVar = {
        "out_of_range": "infinite time or outside 1677..2262, or a number beyond int64"
    }

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
            f"  dropped {n:<19}{getattr(self, n):>9,}"
            + (f"  ({self.REASONS[n]})" if n in self.REASONS else "")
            for n in self.DROPS
            if getattr(self, n)
        ]
        lines.append(f"rows kept            {self.rows_out:>12,}")
        for name in ("html_unescaped", "bad_time", "undated"):
            if getattr(self, name):
                lines.append(f"  fixed {name:<20}{getattr(self, name):>9,}")
        return "\n".join(lines)


def _in_range(times: pd.Series) -> pd.Series:
    """Datetimes (any unit, naive) -> datetime64[ns]; values ns cannot hold become NaT."""
    inside = times.isna() | ((times >= MIN_TIME) & (times <= MAX_TIME))
    return times.where(inside).astype("datetime64[ns]")


def _parse_times(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Datetimes, unix seconds or date strings -> (naive UTC datetime64[ns], out of range).

    Unparseable values become NaT; so do values that parse but cannot be held (infinite, before
    1677 or after 2262), which are also flagged in the second series (the row is dropped).
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        times = values.dt.tz_convert(None) if values.dt.tz is not None else values
        parsed = _in_range(times)
        return parsed, parsed.isna() & values.notna()
    numeric = pd.to_numeric(values, errors="coerce")
    if values.notna().any() and numeric.notna().sum() == values.notna().sum():
        as_float = numeric.astype("float64")
        seconds = as_float.where(np.isfinite(as_float) & (as_float.abs() < INT64_MAX / 1e9))
        parsed = _in_range(pd.to_datetime(seconds, unit="s", errors="coerce"))
        return parsed, parsed.isna() & numeric.notna()
    parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed").dt.tz_convert(None)
    flagged = parsed.notna() & ((parsed < MIN_TIME) | (parsed > MAX_TIME))
    text = values.astype("str").str.strip().str.lower()
    flagged |= values.notna() & (text.isin(INFINITIES) | text.str.endswith(" bc"))  # PostgreSQL
    return _in_range(parsed), flagged


def _to_int(values: pd.Series, column: str, where: str) -> tuple[pd.Series, pd.Series]:
    """(Int64 values, out of range): numbers beyond int64 or infinite are NA and flagged."""
    if pd.api.types.is_integer_dtype(values.dtype):  # already typed (PostgreSQL, Parquet)
        if values.dtype.kind == "u" or str(values.dtype) == "UInt64":
            flagged = (values > INT64_MAX).fillna(False).astype(bool)
            return values.where(~flagged).astype("Int64"), flagged
        return values.astype("Int64"), pd.Series(False, index=values.index)
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.dtype == object:  # huge integers mixed with others: not typed by to_numeric
        numeric = numeric.astype("float64")
    as_float = numeric.astype("float64")
    flagged = numeric.notna() & (~np.isfinite(as_float) | (as_float.abs() >= 2.0**63))
    if numeric.dtype.kind == "u":
        flagged |= numeric > INT64_MAX
    suspect = numeric.isna() & values.notna()
    bad = suspect & (values[suspect].astype("str").str.strip() != "").reindex(
        values.index, fill_value=False
    )
    bad |= ~flagged & numeric.notna() & (as_float != np.floor(as_float.fillna(0)))
    if bad.any():
        row = bad.idxmax()
        raise DataError(
            f"{where}: row {row}: column {column!r}: not an integer: {shorten(values[row])}"
        )
    if flagged.any():
        numeric = as_float.where(~flagged)
    return numeric.astype("Int64"), flagged.astype(bool)


def coerce(df: pd.DataFrame, where: str = "input") -> tuple[pd.DataFrame, int, pd.Series]:
    """Cast canonical columns to their dtypes (missing ones become NA).

    Returns (frame, bad times, out of range): the rows whose time, id, score or descendants no
    column type can hold are flagged in the last series (``clean`` drops them).
    ``where`` names the input in error messages; the frame's index is the row number reported.
    """
    if "title" not in df.columns:
        names = shorten(", ".join(map(str, df.columns)), 200, quote=False)
        raise DataError(f"{where}: no 'title' column (columns: {names})")
    out = pd.DataFrame(index=df.index)
    out_of_range = pd.Series(False, index=df.index)
    for name, dtype in COLUMNS.items():
        values = df[name] if name in df.columns else pd.Series(pd.NA, index=df.index)
        if dtype == "Int64":
            out[name], flagged = _to_int(values, name, where)
            out_of_range |= flagged
        elif name == "time":
            out[name], flagged = _parse_times(values)
            out_of_range |= flagged
        elif values.dtype == "str":
            out[name] = values
        else:
            out[name] = values.astype("str").where(values.notna(), None).astype("str")
    unparseable = out["time"].isna() & df["time"].notna() if "time" in df.columns else False
    unparseable &= ~out_of_range
    latest = pd.Timestamp.now() + pd.Timedelta(days=1)
    impossible = (out["time"] < FIRST_HN_TIME) | (out["time"] > latest)
    out.loc[impossible, "time"] = pd.NaT
    for name in ("dead", *USER_COLUMNS):
        if name in df.columns:
            out[name] = df[name]
    if "author_created" in out.columns:  # optional: an unrepresentable value is just unknown
        out["author_created"] = _parse_times(out["author_created"])[0]
    return out, int((unparseable | impossible).sum()), out_of_range


def clean(df: pd.DataFrame, where: str = "input") -> tuple[pd.DataFrame, CleaningReport]:
    """Coerce types, drop unusable rows and repair fixable ones; return (stories, report)."""
    report = CleaningReport(rows_in=len(df))
    df, report.bad_time, out_of_range = coerce(df, where)

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
    drop(out_of_range, "out_of_range")
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
