"""Track records known when a story is posted: its domain's and its author's earlier stories.

A story's own score, and every later story's, must never reach its features (that would be the
future). Two ways to compute the same numbers, one per use:

- ``HistoryStore.causal(stories)``, for training rows: each story sees only stories with a
  *strictly earlier* time (ties excluded: same-second stories cannot have seen each other's
  scores). Computed with cumulative sums over (key, time) groups, so it is O(n log n).
- ``HistoryStore.fit(stories)`` + ``lookup``, for everything after the data cutoff (validation,
  test, ``upvote predict``, the service): a table frozen at the cutoff, shipped in the bundle, so
  training, batch prediction and serving read the same numbers.

Per key (a domain or an author): ``count`` of earlier stories and the *lift* of their
log1p(score): the smoothed mean ``(sum + m * prior) / (count + m)`` minus the prior, the mean of all
earlier stories (causal too). An unseen or missing key gets a lift of exactly 0, and the era's level
is left to the era feature. ``tests/model`` checks that
changing a story's own or a later story's score leaves its features unchanged.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from upvote.model.metadata import author_key, domain_key

KINDS = ("domain", "author")


@dataclass(frozen=True)
class HistoryConfig:
    smoothing: float = 5.0  # m: pseudo-stories at the prior
    max_keys: int = 50_000  # per kind in the bundle: the most frequent keys (size bound)


def keys_of(stories: pd.DataFrame, kind: str) -> np.ndarray:
    """Domain of ``url`` / lower-cased ``by`` per story; '' when unknown or absent."""
    if kind == "domain":
        column = stories["url"] if "url" in stories.columns else pd.Series([None] * len(stories))
        return np.array([domain_key(u) for u in column.tolist()], dtype=object)
    column = stories["by"] if "by" in stories.columns else pd.Series([None] * len(stories))
    return np.array([author_key(a) for a in column.tolist()], dtype=object)


def _targets(stories: pd.DataFrame) -> np.ndarray:
    return np.log1p(stories["score"].astype("float64").clip(lower=0).fillna(0).to_numpy())


def _exclusive_sums(keys: np.ndarray, times: np.ndarray, y: np.ndarray, w: np.ndarray):
    """Per row: (sum of w, sum of w * y) over rows with the same key and a strictly earlier time."""
    frame = pd.DataFrame({"key": keys, "time": times, "n": w, "s": w * y})
    groups = frame.groupby(["key", "time"], sort=True)[["n", "s"]].sum()
    # shifted inclusive sums, not "inclusive - own": the result must not even round with own values
    before = groups.groupby(level="key").cumsum().groupby(level="key").shift(1, fill_value=0)
    joined = frame[["key", "time"]].join(before, on=["key", "time"])
    return joined["n"].to_numpy(np.float64), joined["s"].to_numpy(np.float64)


@dataclass
class Table:
    """One kind's frozen history: key -> (count, sum of log1p(score))."""

    keys: dict[str, int]
    counts: np.ndarray
    sums: np.ndarray


class HistoryStore:
    """Domain and author history frozen at a data cutoff (see the module docstring)."""

    def __init__(self, config: HistoryConfig, prior: float, tables: dict[str, Table], cutoff: str):
        self.config = config
        self.prior = prior  # mean log1p(score) of every story in the store
        self.tables = tables
        self.cutoff = cutoff  # time of the newest story in the store
        # key -> (count, lift), computed once: a lookup is one dict access per story
        self.frozen = {
            kind: dict(
                zip(
                    table.keys,
                    zip(
                        table.counts.tolist(),
                        self._lift(table.counts, table.sums, prior).tolist(),
                        strict=True,
                    ),
                    strict=True,
                )
            )
            for kind, table in tables.items()
        }

    @classmethod
    def fit(cls, stories: pd.DataFrame, config: HistoryConfig | None = None) -> "HistoryStore":
        """The store of all dated ``stories`` (the bundle's, at its data cutoff)."""
        config = config or HistoryConfig()
        dated = stories[stories["time"].notna()]
        y = _targets(dated)
        tables = {}
        for kind in KINDS:
            frame = pd.DataFrame({"key": keys_of(dated, kind), "y": y})
            frame = frame[frame["key"] != ""]
            agg = frame.groupby("key")["y"].agg(["size", "sum"])
            agg = agg.sort_values("size", ascending=False, kind="stable").head(config.max_keys)
            tables[kind] = Table(
                {k: i for i, k in enumerate(agg.index)},
                agg["size"].to_numpy(np.float64),
                agg["sum"].to_numpy(np.float64),
            )
        prior = float(y.mean()) if len(y) else 0.0
        cutoff = str(dated["time"].max()) if len(dated) else ""
        return cls(config, prior, tables, cutoff)

    def lookup(self, keys_by_kind: dict[str, list[str]]) -> np.ndarray:
        """[N, 4] float64: count and lift (smoothed mean - prior) for domain, then author;
        (0, 0) for an unseen or missing key."""
        rows = self.lookup_rows(keys_by_kind)
        return np.array(rows, dtype=np.float64).reshape(len(rows), 4)

    def lookup_rows(self, keys_by_kind: dict[str, list[str]]) -> list[tuple[float, ...]]:
        """``lookup`` as Python tuples (the service's small batches skip numpy)."""
        none = (0.0, 0.0)
        domains, authors = (self.frozen[kind] for kind in KINDS)
        return [
            (*domains.get(d, none), *authors.get(a, none))
            for d, a in zip(keys_by_kind["domain"], keys_by_kind["author"], strict=True)
        ]

    def _lift(self, counts: np.ndarray, sums: np.ndarray, prior) -> np.ndarray:
        """Smoothed mean minus the prior: ``(sum + m * prior) / (count + m) - prior``."""
        return (sums - counts * prior) / (counts + self.config.smoothing)

    def causal(self, history: pd.DataFrame, stories: pd.DataFrame) -> np.ndarray:
        """[N, 4] like ``lookup`` for ``stories``, from the rows of ``history`` with a strictly
        earlier time only (``stories`` may be rows of ``history``: a row never sees itself).

        Undated stories have no past: count 0, lift 0.
        """
        history = history[history["time"].notna()]
        times = stories["time"].to_numpy("datetime64[ns]")
        dated = ~np.isnat(times)
        queries = stories[dated]
        t = np.concatenate([history["time"].to_numpy("datetime64[ns]"), times[dated]]).astype(
            np.int64
        )
        y = np.concatenate([_targets(history), np.zeros(len(queries))])
        w = np.concatenate([np.ones(len(history)), np.zeros(len(queries))])
        mine = np.arange(len(history), len(t))  # the query rows (weight 0: they add nothing)
        n_all, s_all = _exclusive_sums(np.zeros(len(t), dtype=np.int8), t, y, w)
        fallback = float(_targets(history).mean()) if len(history) else 0.0
        prior = np.where(n_all > 0, s_all / np.maximum(n_all, 1), fallback)[mine]
        out = np.zeros((len(stories), 2 * len(KINDS)))
        for i, kind in enumerate(KINDS):
            keys = np.concatenate([keys_of(history, kind), keys_of(queries, kind)])
            counts, sums = _exclusive_sums(keys, t, y, w)
            known = keys[mine] != ""
            counts, sums = np.where(known, counts[mine], 0.0), np.where(known, sums[mine], 0.0)
            out[dated, 2 * i] = counts
            out[dated, 2 * i + 1] = self._lift(counts, sums, prior)
        return out

    # -- persistence (plain JSON + npz: no pickle in a bundle) ------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"config": asdict(self.config), "prior": self.prior, "cutoff": self.cutoff}
        (directory / "history.json").write_text(json.dumps(meta, indent=2))
        arrays = {}
        for kind, table in self.tables.items():
            arrays[f"{kind}_keys"] = np.array(list(table.keys), dtype=str)
            arrays[f"{kind}_counts"] = table.counts
            arrays[f"{kind}_sums"] = table.sums
        np.savez_compressed(directory / "history.npz", **arrays)

    @classmethod
    def load(cls, directory: Path) -> "HistoryStore":
        meta = json.loads((directory / "history.json").read_text())
        tables = {}
        with np.load(directory / "history.npz", allow_pickle=False) as arrays:
            for kind in KINDS:
                keys = arrays[f"{kind}_keys"].tolist()
                tables[kind] = Table(
                    {k: i for i, k in enumerate(keys)},
                    arrays[f"{kind}_counts"],
                    arrays[f"{kind}_sums"],
                )
        return cls(HistoryConfig(**meta["config"]), meta["prior"], tables, meta["cutoff"])
