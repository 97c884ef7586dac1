"""Stories (title, url, time) -> the arrays the regressor reads.

The title becomes a padded matrix of rows into the word2vec table (-1 = padding or a piece without
a vector; the network mean-pools only the known ones). Extra features are categorical *fields*
(domain bucket, hour, day of week, selection) and a few dense numbers (title length, the share of
pieces without a vector, and an explicit "no known piece" indicator).
"""

import zlib
from dataclasses import asdict, dataclass
from itertools import chain

import numpy as np
import pandas as pd

from upvote.tokenizer import SentencePieceTokenizer

# The `selection` values of the data layer; the model predicts for the unbiased population.
SELECTIONS = ("unfiltered", "random_sample", "commented_only", "top_only", "unknown")
UNBIASED = ("unfiltered", "random_sample")


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


# scheme://user@HOST:port/path -> HOST (a regex over the whole column: ~10x faster than urlsplit)
_HOST = r"^\s*(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:[^@/?#\s]*@)?([^/:?#\s]+)"


def domains(urls: pd.Series) -> pd.Series:
    """``https://www.Example.com/x`` -> ``example.com``; '' when there is no usable url."""
    hosts = urls.astype("string").str.extract(_HOST, expand=False).str.lower()
    return hosts.str.removeprefix("www.").fillna("").astype(str)


def domain_buckets(urls: pd.Series, buckets: int) -> np.ndarray:
    """Hashed domain ids, 0 = no url. crc32 is stable across processes (unlike ``hash``)."""
    names = domains(urls)
    unique = names.unique()
    ids = {d: (1 + zlib.crc32(d.encode()) % buckets) if d else 0 for d in unique}
    return names.map(ids).to_numpy(dtype=np.int64)


def _as_utc_times(values: pd.Series) -> pd.Series:
    """Datetimes, ISO strings or unix seconds (the HN API's `time`) -> naive UTC datetimes."""
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values, unit="s", errors="coerce")
    times = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    return times.dt.tz_localize(None)


class Featurizer:
    """Tokenizer + the piece -> vector-row map + the feature config: everything to featurize."""

    def __init__(
        self, tokenizer: SentencePieceTokenizer, keys: dict[str, int], config: FeatureConfig
    ):
        self.tokenizer = tokenizer
        self.config = config
        pieces = [tokenizer.id_to_piece(i) for i in range(len(tokenizer))]
        # piece id -> row in the vectors table (-1: the piece got no vector, e.g. below min_count)
        self.piece_to_row = np.array([keys.get(p, -1) for p in pieces], dtype=np.int64)

    def token_rows(self, ids: list[list[int]]) -> np.ndarray:
        """Piece ids per title -> padded rows of the vectors table (-1 = padding/no vector)."""
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        width = int(max(1, min(self.config.max_tokens, lengths.max(initial=1))))
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        row = np.repeat(np.arange(len(ids)), lengths)
        position = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        keep = position < width  # titles longer than max_tokens are cut
        rows = np.full((len(ids), width), -1, dtype=np.int64)
        rows[row[keep], position[keep]] = self.piece_to_row[flat[keep]]
        return rows

    def transform(self, stories: pd.DataFrame, selection: str | None = None) -> Features:
        """Featurize ``stories`` (needs ``title``; url/time/selection optional).

        ``selection`` overrides the column (prediction asks for the unbiased population).
        """
        n = len(stories)
        titles = stories["title"].fillna("").astype(str).tolist()
        ids = self.tokenizer.encode_batch(titles) if n else []
        tokens = self.token_rows(ids)
        known = (tokens >= 0).sum(axis=1)
        n_pieces = np.array([len(x) for x in ids], dtype=np.int64)
        dense = [
            (known == 0).astype(np.float32),  # explicit "no known piece" indicator
            1.0 - known / np.maximum(n_pieces, 1),  # share of pieces without a vector
        ]
        if self.config.length:
            dense += [
                np.array([len(t) for t in titles], dtype=np.float32) / 80.0,
                n_pieces.astype(np.float32) / 20.0,
            ]
        fields = []
        if self.config.domain:
            urls = stories["url"] if "url" in stories else pd.Series([None] * n, dtype=object)
            fields.append(domain_buckets(urls, self.config.domain_buckets))
        if self.config.time:
            times = _as_utc_times(stories["time"]) if "time" in stories else None
            if times is None:
                hour, weekday = np.full(n, 24), np.full(n, 7)
            else:
                hour = times.dt.hour.fillna(24).to_numpy(dtype=np.int64)
                weekday = times.dt.day_of_week.fillna(7).to_numpy(dtype=np.int64)
            fields += [hour, weekday]
        if self.config.selection:
            values = [selection] * n if selection else stories["selection"].tolist()
            fields.append([SELECTIONS.index(v) if v in SELECTIONS else 0 for v in values])
        return Features(
            tokens=tokens,
            fields=np.array(fields, dtype=np.int64).T.reshape(n, len(self.config.fields)),
            dense=np.stack(dense, axis=1).astype(np.float32),
        )
