"""Which stories train, validate and test the model, and how each split is featurized.

Selection bias: the shipped stories mix unbiased rows (`unfiltered`, `random_sample`: median
score ~2) with biased ones (`commented_only`: median ~100, `top_only`, and `unknown`). By default
we train, early-stop and test on the unbiased rows only: the model predicts for an ordinary story.
``rows="all"`` adds the biased rows to *training* with `selection` as a feature (set to
`unfiltered` at prediction time); validation and test stay unbiased, so both choices are measured
on the same stories. Track records (history.py) may use every dated story's score, biased or not,
as long as it is strictly older than the story they describe.
"""

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from upvote.data.schema import UNBIASED, UNFILTERED
from upvote.data.split import time_split
from upvote.model.evaluate import log_target
from upvote.model.features import FeatureConfig, Features, Featurizer
from upvote.model.history import HistoryConfig, HistoryStore
from upvote.model.text_score import TextScore, fit_text_score
from upvote.tokenizer.sentencepiece import SentencePieceTokenizer


@dataclass
class Data:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    history: pd.DataFrame  # dated stories whose scores may serve as track records (history.py)
    snapshot: str  # hash of the rows used: which data a bundle was trained on
    # the title score fitted on these rows (text_score.py), kept once fitted: every feature set
    # of the same data (ablations, seeds) reads the same one
    text_score: tuple[TextScore, np.ndarray] | None = field(default=None, repr=False)


def mark_known_urls(stories: pd.DataFrame) -> pd.DataFrame:
    """``url_known``: False for the rows of a source that never carries a url (it dropped them:
    the url is unknown there, while a missing url elsewhere means a text post)."""
    if "url" not in stories.columns:
        return stories.assign(url_known=False)
    has_url = stories["url"].notna() & (stories["url"].astype("string").str.strip() != "")
    if "source" in stories.columns:
        source = stories["source"].fillna("")
    else:
        source = pd.Series("", index=stories.index)
    known = has_url.groupby(source).transform("any")
    return stories.assign(url_known=known.to_numpy(dtype=bool))


def prepare_data(
    stories: pd.DataFrame,
    rows: str = "unbiased",
    max_rows: int | None = None,
    history_rows: str = "all",
) -> Data:
    """Choose rows (selection bias!) and split them by time; valid/test are always unbiased."""
    if "selection" not in stories.columns:  # a pulled dataset: every story of its period
        stories = stories.assign(selection=UNFILTERED)
    stories = mark_known_urls(stories)
    unbiased = stories[stories["selection"].isin(UNBIASED)]
    if max_rows:
        unbiased = unbiased.sort_values("time", kind="stable").tail(max_rows)
    split = time_split(unbiased)
    train = pd.concat([split.train, split.undated])
    if rows == "all":
        valid_start = split.valid["time"].min()
        biased = stories[~stories["selection"].isin(UNBIASED)]
        biased = biased[biased["time"].isna() | (biased["time"] < valid_start)]
        train = pd.concat([train, biased])
    elif rows != "unbiased":
        raise ValueError(f"rows must be 'unbiased' or 'all', not {rows!r}")
    for name, part in (("train", train), ("valid", split.valid), ("test", split.test)):
        if len(part) < 10:
            raise ValueError(
                f"only {len(part)} {name} stories: need dated stories with selection in "
                f"{UNBIASED} (have {len(unbiased)}); pull more data or raise --max-rows"
            )
    if history_rows not in ("all", "unbiased"):
        raise ValueError(f"history_rows must be 'all' or 'unbiased', not {history_rows!r}")
    # The data cutoff is the newest story the model is tested on: rows dated after it (the
    # sample's 2026 top stories) would be the future of every story it is asked about next.
    cutoff = split.test["time"].max()
    pool = stories if history_rows == "all" else unbiased
    history = pool[pool["time"].notna() & (pool["time"] <= cutoff)]
    keys = pd.concat([train, split.valid, split.test, history])[["id", "time", "title", "score"]]
    snapshot = hashlib.sha256(pd.util.hash_pandas_object(keys, index=False).to_numpy()).hexdigest()
    return Data(train, split.valid, split.test, history, snapshot[:16])


@dataclass
class SplitFeatures:
    """Each split featurized as it would be seen in production (history.py): training rows with
    their causal track records and cross-fitted title scores (text_score.py), validation and test
    with a store frozen at their start; and the featurizer of the bundle, whose store holds every
    story up to the data cutoff."""

    train: Features
    valid: Features
    test: Features
    featurizer: Featurizer


def split_features(
    tokenizer: SentencePieceTokenizer,
    vectors,
    config: FeatureConfig,
    data: Data,
    history: HistoryConfig | None = None,
) -> SplitFeatures:
    def before(split: pd.DataFrame) -> pd.DataFrame:
        return data.history[data.history["time"] < split["time"].min()]

    history_valid, history_test = before(data.valid), before(data.test)
    stores = [HistoryStore.fit(h, history) for h in (history_valid, history_test, data.history)]
    text_score, crossed = None, None
    if config.text_score and config.title:
        if data.text_score is None:
            titles = [_titles(d) for d in (data.train, data.valid)]
            targets = [log_target(d["score"]) for d in (data.train, data.valid)]
            data.text_score = fit_text_score((titles[0], targets[0]), (titles[1], targets[1]))
        text_score, crossed = data.text_score

    def featurizer(store: HistoryStore) -> Featurizer:
        return Featurizer(tokenizer, vectors.key_to_index, config, store, text_score)

    causal = stores[0].causal(history_valid, data.train) if config.history else None
    return SplitFeatures(
        featurizer(stores[0]).transform(data.train, history=causal, text_scores=crossed),
        featurizer(stores[0]).transform(data.valid),
        featurizer(stores[1]).transform(data.test),
        featurizer(stores[2]),
    )


def _titles(df: pd.DataFrame) -> list[str]:
    return [str(t).strip() for t in df["title"].fillna("")]
