"""Stories (title, url, author, time) -> the arrays the regressor reads.

The title becomes a padded matrix of rows into the word2vec table (-1 = padding or a piece without
a vector; the network mean-pools only the known ones). What else is known when a story is posted
becomes categorical *fields* (hour of the week, optionally a hashed domain, `selection`) and
*dense* numbers (``Featurizer.dense_names``): the title's form, its domain's and author's track
record (``history.py``: from strictly earlier stories in training, from a table frozen at the data
cutoff afterwards), and the era.

Stories come as a DataFrame (training, ``upvote predict``) or as a list of dicts (the service:
one to a few stories, where building a DataFrame would cost more than the model). Both are
turned into plain Python columns and featurized by the same code, so they cannot disagree.

A missing url is a text post (Ask HN...) when the story *has* a url field, but unknown when the
field is absent (the MLX contract sends none) or the row says ``url_known=False`` (sources that
dropped urls): the model learns both cases apart.
"""

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from upvote.data.schema import SELECTIONS
from upvote.model.history import HistoryStore
from upvote.model.metadata import (
    FORM_NAMES,
    NAT,
    author_key,
    domain_key,
    era,
    era_of,
    hour_of_week,
    missing,
    text,
    title_form,
    utc_times,
)
from upvote.model.text_score import TextScore
from upvote.tokenizer.sentencepiece import SentencePieceTokenizer

Stories = pd.DataFrame | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class FeatureConfig:
    """Which features exist. All of ``history``/``time``/``form`` off = the title-only ablation;
    ``title`` off = the metadata-only ablation (the pooled vector is left out)."""

    # Defaults chosen on the validation split (docs/model.md, "Choices"): the track records carry
    # most; the hour of the week, as a 168-value field, overfits and is off.
    max_tokens: int = 48
    title: bool = True
    history: bool = True  # domain and author track records (history.py)
    time: bool = False  # hour of the week (UTC) as a field, and "time unknown"
    era: bool = True  # fractional years since 2016: scores drift over the years
    form: bool = True  # Show/Ask/Tell/Launch HN, length, question, digits, capitals, tags
    text_score: bool = True  # TF-IDF + ridge score of the title's words (text_score.py)
    domain: bool = False  # the domain hashed into buckets as a field (the history is denser)
    domain_buckets: int = 2048  # hashed: no vocabulary to ship, unseen domains still get a bucket
    selection: bool = False  # one-hot of `selection`: only when training on the biased rows too

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureConfig":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def fields(self) -> list[tuple[str, int]]:
        """(name, cardinality) of each categorical field, in column order of ``Features.fields``."""
        fields = []
        if self.domain:
            fields.append(("domain", self.domain_buckets + 1))  # 0 = no url
        if self.time:
            fields.append(("hour_of_week", 169))  # 168 = unknown time
        if self.selection:
            fields.append(("selection", len(SELECTIONS)))
        return fields

    @property
    def dense_names(self) -> list[str]:
        names = ["no_known_piece", "unknown_piece_share"]
        if self.form:
            names += [*FORM_NAMES, "pieces"]
        if self.history:
            names += ["url_unknown", "no_url", "domain_count", "domain_lift"]
            names += ["author_known", "author_count", "author_lift"]
        if self.time:
            names += ["time_unknown"]
        if self.era:
            names += ["era"]
        if self.text_score and self.title:
            names += ["title_text_score"]
        return names

    @property
    def n_dense(self) -> int:
        return len(self.dense_names)


@dataclass
class Features:
    tokens: np.ndarray  # int64 [N, L]: rows of the vectors table, -1 = none
    fields: np.ndarray  # int64 [N, F]: one id per categorical field
    dense: np.ndarray  # float32 [N, n_dense]
    titles: list[str] | None = None  # the raw titles (the TF-IDF baseline reads them)

    def __len__(self) -> int:
        return len(self.tokens)

    def take(self, index) -> "Features":
        titles = self.titles
        if titles is not None:  # a slice (batched inference) needs no object array
            titles = titles[index] if isinstance(index, slice) else [titles[i] for i in index]
        return Features(self.tokens[index], self.fields[index], self.dense[index], titles)


def domain_buckets(urls: Sequence[Any], buckets: int) -> np.ndarray:
    """Hashed domain ids, 0 = no url. crc32 is stable across processes (unlike ``hash``)."""
    names = [domain_key(url) for url in urls]
    ids = {d: (1 + zlib.crc32(d.encode()) % buckets) if d else 0 for d in set(names)}
    return np.array([ids[d] for d in names], dtype=np.int64)


def _column(stories: Stories, name: str) -> pd.Series | list | None:
    """One column of a DataFrame, or the values of a list of dicts (None where a story lacks
    ``name``, as in a DataFrame built from them); None when no story has it."""
    if isinstance(stories, pd.DataFrame):
        return stories[name] if name in stories.columns else None
    return [story.get(name) for story in stories] if any(name in s for s in stories) else None


def _as_list(values: pd.Series | list | None) -> list | None:
    return values.tolist() if isinstance(values, pd.Series) else values


def url_known(stories: Stories) -> np.ndarray:
    """Per story: is its url (or its absence) known? See the module docstring."""
    n = len(stories)
    if isinstance(stories, pd.DataFrame):
        known = np.full(n, "url" in stories.columns)
        if "url_known" in stories.columns:
            known &= stories["url_known"].fillna(True).to_numpy(dtype=bool)
        return known
    return np.array([("url" in s) and s.get("url_known", True) is not False for s in stories])


class Featurizer:
    """Tokenizer + the piece -> vector-row map + the feature config: everything to featurize."""

    def __init__(
        self,
        tokenizer: SentencePieceTokenizer,
        keys: dict[str, int],
        config: FeatureConfig,
        history: HistoryStore | None = None,
        text_score: TextScore | None = None,
    ):
        if config.history and history is None:
            raise ValueError("FeatureConfig(history=True) needs a HistoryStore")
        if config.text_score and config.title and text_score is None:
            raise ValueError("FeatureConfig(text_score=True) needs a TextScore")
        self.tokenizer = tokenizer
        self.config = config
        self.history = history  # frozen at the data cutoff: what every prediction reads
        self.text_score = text_score
        pieces = [tokenizer.id_to_piece(i) for i in range(len(tokenizer))]
        # piece id -> row in the vectors table (-1: the piece got no vector, e.g. below min_count),
        # plus a last entry (-1) for padding
        self.piece_to_row = np.array([keys.get(p, -1) for p in pieces] + [-1], dtype=np.int64)

    def token_rows(self, ids: list[list[int]]) -> np.ndarray:
        """Piece ids per title -> padded rows of the vectors table (-1 = padding/no vector).

        Padding with an extra piece id that maps to -1, then one gather: for the service's
        batches of a few titles this is cheaper than scattering a flat array (fewer ops of fixed
        cost); for large batches it is a little slower (benchmarks/RESULTS.md).
        """
        width = max(1, min(self.config.max_tokens, max(map(len, ids), default=1)))
        padding = len(self.piece_to_row) - 1  # the last entry: -1
        padded = [piece_ids[:width] + [padding] * (width - len(piece_ids)) for piece_ids in ids]
        return self.piece_to_row[np.array(padded, dtype=np.int64).reshape(len(ids), width)]

    def transform(
        self,
        stories: Stories,
        selection: str | None = None,
        history: np.ndarray | None = None,
        text_scores: np.ndarray | None = None,
    ) -> Features:
        """Featurize ``stories``: a DataFrame or a list of dicts (needs ``title``; url/by/time/
        selection optional). ``selection`` overrides the column (prediction asks for the
        unbiased population). ``history``: the [N, 4] track records of training rows, computed
        causally (``HistoryStore.causal``); by default they are looked up in the frozen store.
        ``text_scores``: the training rows' cross-fitted title scores (text_score.py).
        """
        column = _column(stories, "title")
        if column is None:
            raise ValueError("stories need a 'title'")
        n = len(stories)
        titles = [text(t).strip() for t in _as_list(column)]
        ids = self.tokenizer.encode_batch(titles)
        tokens = self.token_rows(ids)
        # The dense features are built as one Python row per story and converted once: for the
        # service's few stories that is several times cheaper than a dozen numpy column ops.
        rows = [
            [float(known == 0), 1.0 - known / max(len(pieces), 1)]  # no known piece; unknown share
            for known, pieces in zip((tokens >= 0).sum(axis=1).tolist(), ids, strict=True)
        ]
        if self.config.form:
            for row, title, pieces in zip(rows, titles, ids, strict=True):
                row += title_form(title)
                row.append(len(pieces) / 20.0)
        urls = _as_list(_column(stories, "url")) or [None] * n
        if self.config.history:
            for row, record in zip(rows, self._history(stories, urls, history), strict=True):
                row += record
        times = None
        if self.config.era and not self.config.time and not isinstance(stories, pd.DataFrame):
            for row, story in zip(rows, stories, strict=True):  # the service: no arrays needed
                row.append(era_of(story.get("time")))
        elif self.config.time or self.config.era:
            times = _column(stories, "time")
            times = np.full(n, NAT) if times is None else utc_times(times)
        if self.config.time:
            for row, unknown in zip(rows, np.isnat(times).tolist(), strict=True):
                row.append(float(unknown))
        if self.config.era and times is not None:
            for row, years in zip(rows, era(times).tolist(), strict=True):
                row.append(years)
        if self.config.text_score and self.config.title:
            if text_scores is None:
                text_scores = self.text_score(titles) if n else np.zeros(0)
            for row, score in zip(rows, np.asarray(text_scores).tolist(), strict=True):
                row.append(score)
        fields = []
        if self.config.domain:
            fields.append(domain_buckets(urls, self.config.domain_buckets))
        if self.config.time:
            fields.append(hour_of_week(times))
        if self.config.selection:
            values = [selection] * n if selection else _as_list(_column(stories, "selection"))
            if values is None:
                raise ValueError("stories need a 'selection' column (or pass selection=...)")
            fields.append([SELECTIONS.index(v) if v in SELECTIONS else 0 for v in values])
        if not self.config.title:
            tokens = np.full((n, 1), -1, dtype=np.int64)  # the metadata-only ablation
        return Features(
            tokens=tokens,
            fields=np.array(fields, dtype=np.int64).T.reshape(n, len(self.config.fields)),
            dense=np.array(rows, dtype=np.float32).reshape(n, self.config.n_dense),
            titles=titles,
        )

    def history_keys(self, stories: Stories, urls: list | None = None) -> dict[str, list[str]]:
        if urls is None:
            urls = _as_list(_column(stories, "url")) or [None] * len(stories)
        authors = _as_list(_column(stories, "by")) or [None] * len(stories)
        return {"domain": [domain_key(u) for u in urls], "author": [author_key(a) for a in authors]}

    def _history(self, stories: Stories, urls: list, history: np.ndarray | None) -> list[tuple]:
        """Per story: url unknown, no url, log1p(domain count), domain lift, author known,
        log1p(author count), author lift (history.py; a story's own score is never in them)."""
        keys = self.history_keys(stories, urls)
        records = self.history.lookup_rows(keys) if history is None else history.tolist()
        log1p = math.log1p
        return [
            (
                float(not known),
                float(known and (missing(u) or text(u).strip() == "")),
                log1p(d_count),
                d_lift,
                float(author != ""),
                log1p(a_count),
                a_lift,
            )
            for known, u, author, (d_count, d_lift, a_count, a_lift) in zip(
                url_known(stories).tolist(), urls, keys["author"], records, strict=True
            )
        ]
