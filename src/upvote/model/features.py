"""Stories (title, url, time) -> the arrays the regressor reads.

The title becomes a padded matrix of rows into the word2vec table (-1 = padding or a piece without
a vector; the network mean-pools only the known ones). Extra features are categorical *fields*
(domain bucket, hour, day of week, selection) and a few dense numbers (title length, the share of
pieces without a vector, and an explicit "no known piece" indicator).

Stories come as a DataFrame (training, ``upvote predict``) or as a list of dicts (the service:
one to a few stories, where building a DataFrame would cost more than the model). Both are
turned into plain Python columns and featurized by the same code, so they cannot disagree.
"""

import math
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from upvote.tokenizer import SentencePieceTokenizer

# The `selection` values of the data layer; the model predicts for the unbiased population.
SELECTIONS = ("unfiltered", "random_sample", "commented_only", "top_only", "unknown")
UNBIASED = ("unfiltered", "random_sample")

Stories = pd.DataFrame | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class FeatureConfig:
    """Which features exist. ``domain``/``time``/``length`` off = the title-only ablation."""

    # Defaults chosen on the validation split (mean of 3 seeds, docs/model.md): hour/weekday help a
    # little; domain hurts (in the sample "no url" mostly means "2007-2015"), length adds nothing.
    max_tokens: int = 48
    domain: bool = False
    domain_buckets: int = 2048  # hashed: no vocabulary to ship, unseen domains still get a bucket
    time: bool = True  # hour of day and day of week (UTC)
    length: bool = False
    selection: bool = False  # one-hot of `selection`: only when training on the biased rows too

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def fields(self) -> list[tuple[str, int]]:
        """(name, cardinality) of each categorical field, in column order of ``Features.fields``."""
        fields = []
        if self.domain:
            fields.append(("domain", self.domain_buckets + 1))  # 0 = no url
        if self.time:
            fields += [("hour", 25), ("weekday", 8)]  # last id = unknown time
        if self.selection:
            fields.append(("selection", len(SELECTIONS)))
        return fields

    @property
    def n_dense(self) -> int:
        return 2 + (2 if self.length else 0)


@dataclass
class Features:
    tokens: np.ndarray  # int64 [N, L]: rows of the vectors table, -1 = none
    fields: np.ndarray  # int64 [N, F]: one id per categorical field
    dense: np.ndarray  # float32 [N, n_dense]

    def __len__(self) -> int:
        return len(self.tokens)

    def take(self, index: np.ndarray) -> "Features":
        return Features(self.tokens[index], self.fields[index], self.dense[index])


def _missing(value: Any) -> bool:
    """None, NaN, NaT or pd.NA: what a DataFrame holds where a story has no value."""
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if _missing(value) else str(value)


# scheme://user@HOST:port/path -> HOST
_HOST = re.compile(r"^\s*(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:[^@/?#\s]*@)?([^/:?#\s]+)")


def domain(url: Any) -> str:
    """``https://www.Example.com/x`` -> ``example.com``; '' when there is no usable url."""
    match = _HOST.match(_text(url))
    return match[1].lower().removeprefix("www.") if match else ""


def domain_buckets(urls: Sequence[Any], buckets: int) -> np.ndarray:
    """Hashed domain ids, 0 = no url. crc32 is stable across processes (unlike ``hash``)."""
    names = [domain(url) for url in urls]
    ids = {d: (1 + zlib.crc32(d.encode()) % buckets) if d else 0 for d in set(names)}
    return np.array([ids[d] for d in names], dtype=np.int64)


NAT = np.datetime64("NaT", "ns")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _utc_time(value: Any) -> np.datetime64:
    """A datetime, ISO 8601 string (any offset) or unix seconds -> naive UTC; NaT if unusable.

    Naive datetimes and strings without an offset are taken as UTC (like the dataset's ``time``).
    """
    if _missing(value):
        return NAT
    if isinstance(value, np.datetime64):
        return value
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return pd.to_datetime(value, unit="s", errors="coerce").to_datetime64()
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:  # other formats: pandas' lenient parser, as for a string column
            value = pd.to_datetime(value, errors="coerce", utc=True, format="mixed")
            return NAT if _missing(value) else value.tz_localize(None).to_datetime64()
    if isinstance(value, datetime):  # pd.Timestamp is one too
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        # Integer microseconds since the epoch: exact, and ~7x cheaper than datetime64(value).
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


def hour_and_weekday(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTC hour (0-23) and weekday (Monday = 0); 24 and 7 where the time is unknown."""
    unknown = np.isnat(times)
    hours = times.astype("datetime64[h]").astype(np.int64)
    hour = np.where(unknown, 24, hours % 24)
    weekday = np.where(unknown, 7, (hours // 24 + 3) % 7)  # 1970-01-01 was a Thursday (3)
    return hour, weekday


def _column(stories: Stories, name: str) -> pd.Series | list | None:
    """One column of a DataFrame, or the values of a list of dicts (None where a story lacks
    ``name``, as in a DataFrame built from them); None when no story has it."""
    if isinstance(stories, pd.DataFrame):
        return stories[name] if name in stories.columns else None
    return [story.get(name) for story in stories] if any(name in s for s in stories) else None


def _as_list(values: pd.Series | list | None) -> list | None:
    return values.tolist() if isinstance(values, pd.Series) else values


class Featurizer:
    """Tokenizer + the piece -> vector-row map + the feature config: everything to featurize."""

    def __init__(
        self, tokenizer: SentencePieceTokenizer, keys: dict[str, int], config: FeatureConfig
    ):
        self.tokenizer = tokenizer
        self.config = config
        pieces = [tokenizer.id_to_piece(i) for i in range(len(tokenizer))]
        # piece id -> row in the vectors table (-1: the piece got no vector, e.g. below min_count),
        # plus a last entry (-1) for padding
        self.piece_to_row = np.array([keys.get(p, -1) for p in pieces] + [-1], dtype=np.int64)

    def token_rows(self, ids: list[list[int]]) -> np.ndarray:
        """Piece ids per title -> padded rows of the vectors table (-1 = padding/no vector).

        Padding with an extra piece id that maps to -1, then one gather: for the service's
        batches of a few titles this is 2x cheaper than scattering a flat array (its fixed cost is
        a third of the ops); for 60k titles it costs ~0.1 s instead of ~0.04 s.
        """
        width = max(1, min(self.config.max_tokens, max(map(len, ids), default=1)))
        padding = len(self.piece_to_row) - 1  # the last entry: -1
        padded = [piece_ids[:width] + [padding] * (width - len(piece_ids)) for piece_ids in ids]
        return self.piece_to_row[np.array(padded, dtype=np.int64).reshape(len(ids), width)]

    def transform(self, stories: Stories, selection: str | None = None) -> Features:
        """Featurize ``stories``: a DataFrame or a list of dicts (needs ``title``; url/time/
        selection optional). ``selection`` overrides the column (prediction asks for the
        unbiased population).
        """
        column = _column(stories, "title")
        if column is None:
            raise ValueError("stories need a 'title'")
        n = len(stories)
        titles = [_text(t) for t in _as_list(column)]
        ids = self.tokenizer.encode_batch(titles)
        tokens = self.token_rows(ids)
        known = (tokens >= 0).sum(axis=1)
        n_pieces = np.fromiter(map(len, ids), dtype=np.int64, count=n)
        dense = [
            (known == 0).astype(np.float32),  # explicit "no known piece" indicator
            1.0 - known / np.maximum(n_pieces, 1),  # share of pieces without a vector
        ]
        if self.config.length:
            dense += [
                np.fromiter(map(len, titles), dtype=np.float32, count=n) / 80.0,
                n_pieces.astype(np.float32) / 20.0,
            ]
        fields = []
        if self.config.domain:
            urls = _as_list(_column(stories, "url")) or [None] * n
            fields.append(domain_buckets(urls, self.config.domain_buckets))
        if self.config.time:
            times = _column(stories, "time")
            fields += hour_and_weekday(np.full(n, NAT) if times is None else utc_times(times))
        if self.config.selection:
            values = [selection] * n if selection else _as_list(_column(stories, "selection"))
            if values is None:
                raise ValueError("stories need a 'selection' column (or pass selection=...)")
            fields.append([SELECTIONS.index(v) if v in SELECTIONS else 0 for v in values])
        return Features(
            tokens=tokens,
            fields=np.array(fields, dtype=np.int64).T.reshape(n, len(self.config.fields)),
            dense=np.stack(dense, axis=1).astype(np.float32),
        )
