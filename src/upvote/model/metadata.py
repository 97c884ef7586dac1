"""What is known about a story when it is posted, besides its words: url, author, time, form.

Plain functions over Python values or columns, shared by the featurizer, the history store and the
explanations, so that training, ``upvote predict`` and the service read a story the same way.
"""

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd


def missing(value: Any) -> bool:
    """None, NaN, NaT or pd.NA: what a DataFrame holds where a story has no value."""
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


def text(value: Any) -> str:
    return value if isinstance(value, str) else "" if missing(value) else str(value)


# scheme://user@HOST:port/path -> HOST
_HOST = re.compile(r"^\s*(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:[^@/?#\s]*@)?([^/:?#\s]+)")
# Hosts where the first path segment names the publisher (github.com/<user>, medium.com/<blog>).
_PUBLISHER_HOSTS = frozenset({"github.com", "medium.com", "twitter.com", "x.com", "youtube.com"})


def domain_key(url: Any) -> str:
    """``https://www.Example.com/x`` -> ``example.com``; '' when there is no usable url.

    On hosts that carry many publishers the first path segment is kept (``github.com/torvalds``):
    a repository's owner has a track record, the whole of GitHub does not say much.
    """
    raw = text(url)
    match = _HOST.match(raw)
    if not match:
        return ""
    host = match[1].lower().removeprefix("www.").rstrip(".")
    if host in _PUBLISHER_HOSTS:
        rest = raw[match.end() :].lstrip("/").split("/", 1)[0].split("?", 1)[0].lower()
        if rest:
            return f"{host}/{rest}"
    return host


def author_key(by: Any) -> str:
    """HN user names are case-insensitive for humans; '' when unknown."""
    return text(by).strip().lower()


# -- time ------------------------------------------------------------------------------------
NAT = np.datetime64("NaT", "ns")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
ERA_ORIGIN = 2016.0  # year the shipped sample's test split is in: era features are ~0 there


def _utc_time(value: Any) -> np.datetime64:
    """A datetime, ISO 8601 string (any offset) or unix seconds -> naive UTC; NaT if unusable.

    Naive datetimes and strings without an offset are taken as UTC (like the dataset's ``time``).
    """
    if missing(value):
        return NAT
    if isinstance(value, np.datetime64):
        return value
    if isinstance(value, pd.Timestamp):  # .value: ns since the epoch, UTC if tz-aware
        return np.datetime64(value.value, "ns")
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return pd.to_datetime(value, unit="s", errors="coerce").to_datetime64()
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:  # other formats: pandas' lenient parser, as for a string column
            value = pd.to_datetime(value, errors="coerce", utc=True, format="mixed")
            return NAT if missing(value) else value.tz_localize(None).to_datetime64()
    if isinstance(value, datetime):  # pd.Timestamp is one too
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        # Integer microseconds since the epoch: exact, and cheaper than datetime64(value).
        return np.datetime64((value - EPOCH) // MICROSECOND, "us")
    return NAT


def utc_times(values: pd.Series | Sequence[Any]) -> np.ndarray:
    """``time`` values -> datetime64[ns] naive UTC (NaT = unknown).

    Datetime and numeric (unix seconds, the HN API's ``time``) columns convert in one vectorised
    step; anything else (a list of dicts' values, a column of strings) value by value.
    """
    if isinstance(values, pd.Series):
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        if pd.api.types.is_datetime64_dtype(values):
            return values.to_numpy(dtype="datetime64[ns]")
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            return pd.to_datetime(values, unit="s", errors="coerce").to_numpy("datetime64[ns]")
        values = values.tolist()
    return np.array([_utc_time(v) for v in values], dtype="datetime64[ns]").reshape(len(values))


DAY = timedelta(days=1)


def era_of(value: Any) -> float:
    """``era`` of one ``time`` value, in Python floats: the service's stories come one to a few
    per batch, with the datetime pydantic parsed (or none), where the numpy path's half-dozen
    array calls cost more than the arithmetic. The same operations in the same order (whole days,
    floored, then ``/ 365.2425 + 1970.0 - ERA_ORIGIN``), so the same float; other kinds of
    value take the numpy path."""
    if value is None:
        return 0.0
    if type(value) is datetime:  # not pd.Timestamp (nanoseconds): the general path reads it
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return (value - EPOCH) // DAY / 365.2425 + 1970.0 - ERA_ORIGIN
    return float(era(utc_times([value]))[0])


def hour_of_week(times: np.ndarray) -> np.ndarray:
    """UTC hour of the week, Monday 00:00 = 0 .. 167; 168 where the time is unknown."""
    hours = times.astype("datetime64[h]").astype(np.int64)
    # 1970-01-01 was a Thursday: day 3 of a Monday-based week
    return np.where(np.isnat(times), 168, (hours + 3 * 24) % 168)


def era(times: np.ndarray) -> np.ndarray:
    """Fractional years since ``ERA_ORIGIN`` (0 where unknown): scores drift over the years."""
    years = times.astype("datetime64[D]").astype(np.float64) / 365.2425 + 1970.0 - ERA_ORIGIN
    return np.where(np.isnat(times), 0.0, years)


# -- the title's form ------------------------------------------------------------------------
_PREFIX = re.compile(r"^\s*(show|ask|tell|launch)\s+hn\b", re.IGNORECASE)
_PREFIX_INDEX = {"show": 0, "ask": 1, "tell": 2, "launch": 3}
_DIGIT = re.compile(r"\d")
_YEAR_TAG = re.compile(r"[(\[]\s*(?:19|20)\d\d\s*[)\]]")  # "(2015)": an older article
_MEDIA_TAG = re.compile(r"[(\[]\s*(?:pdf|video|audio|slides)\s*[)\]]", re.IGNORECASE)

FORM_NAMES = (
    "show_hn",
    "ask_hn",
    "tell_hn",
    "launch_hn",
    "chars",
    "question",
    "digits",
    "caps_share",
    "year_tag",
    "media_tag",
)


_ASCII_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))
_ASCII_UPPER = bytes(range(65, 91))


def title_form(title: str) -> list[float]:
    """The form of a title, one value per ``FORM_NAMES`` (length in units of 80 characters).

    Built from regular expressions and C-level byte operations: the service featurizes every
    request's titles. The capitals' share counts ASCII letters (the titles are English).
    """
    prefix = [0.0, 0.0, 0.0, 0.0]
    match = _PREFIX.match(title)
    if match:
        prefix[_PREFIX_INDEX[match[1].lower()]] = 1.0
    ascii_ = title.encode("ascii", "ignore")
    letters = len(ascii_) - len(ascii_.translate(None, _ASCII_LETTERS))
    caps = (len(ascii_) - len(ascii_.translate(None, _ASCII_UPPER))) / letters if letters else 0.0
    return [
        *prefix,
        len(title) / 80.0,
        float("?" in title),
        float(_DIGIT.search(title) is not None),
        caps,
        float(_YEAR_TAG.search(title) is not None),
        float(_MEDIA_TAG.search(title) is not None),
    ]
