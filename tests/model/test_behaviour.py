"""Behavioural tests of the default model (CheckList: Ribeiro et al. 2020), trained on the whole
shipped sample with a small budget: invariance where a change should not matter, directional
expectations where it should, and minimum functionality on stories with a known strong signal."""

from dataclasses import replace

import numpy as np
import pytest

from upvote.data.dataset import load_stories
from upvote.embeddings import train as train_word2vec
from upvote.embeddings.params import Word2VecParams
from upvote.model.corpus import Corpus, corpus_titles
from upvote.model.features import FeatureConfig
from upvote.model.inference import RegressorConfig
from upvote.model.metadata import domain_key
from upvote.model.splits import prepare_data, split_features
from upvote.model.train import fit_model
from upvote.tokenizer import SentencePieceTokenizer

WHEN = "2016-09-20T15:00:00Z"  # just after the sample's data cutoff


@pytest.fixture(scope="module")
def fitted():
    stories = load_stories()
    data = prepare_data(stories)
    titles = corpus_titles(stories, data)
    tokenizer = SentencePieceTokenizer.train(titles, vocab_size=2000)
    vectors = train_word2vec(
        Corpus(titles, tokenizer, []), Word2VecParams(vector_size=32, min_count=3, epochs=2)
    )
    regressor = replace(RegressorConfig(), hidden=(64,), max_epochs=6)
    model = fit_model(tokenizer, vectors, FeatureConfig(), regressor, data)[0]
    return model, data


def best_and_worst(data, column: str, key, min_count: int = 8) -> tuple[str, str]:
    """The keys with the highest and lowest mean log score among those with enough stories."""
    history = data.history.dropna(subset=[column])
    keys = history[column].map(key)
    scores = np.log1p(history["score"].astype(float).clip(lower=0))
    stats = scores.groupby(keys).agg(["size", "mean"])
    stats = stats[(stats["size"] >= min_count) & (stats.index != "")].sort_values("mean")
    return stats.index[-1], stats.index[0]


def predict(model, stories) -> np.ndarray:
    return model.predict(stories)["predicted_log1p"].to_numpy()


def test_invariance_to_what_should_not_matter(fitted):
    model, _ = fitted
    base = {"title": "Show HN: A database in Rust", "url": "https://github.com/x/y", "by": "pg"}
    same = [
        base,
        {**base, "title": base["title"] + "   "},  # trailing spaces
        {**base, "url": "HTTPS://WWW.GitHub.com/X/y"},  # scheme/host case, www.
        {**base, "by": "PG"},  # HN user names: case-insensitive for readers
        {**base, "time": "2016-09-20T17:00:00+02:00"},  # the same instant in another zone
    ]
    same[0] = {**base, "time": WHEN}
    for story in same[1:]:
        story.setdefault("time", WHEN)
    out = predict(model, same)
    np.testing.assert_allclose(out, out[0], rtol=0, atol=1e-6)


def test_directional_track_records(fitted):
    """The same title from the best-scoring domain and author beats an unknown one, and the
    worst-scoring domain falls below it."""
    model, data = fitted
    good_domain, bad_domain = best_and_worst(data, "url", domain_key)
    good_author, _ = best_and_worst(data, "by", lambda a: str(a).lower())
    title = "A new approach to building databases"
    stories = [
        {"title": title, "url": "https://unseen-example-domain.test/a", "time": WHEN},
        {"title": title, "url": f"https://{good_domain}/a", "time": WHEN},
        {"title": title, "url": f"https://{bad_domain}/a", "time": WHEN},
        {
            "title": title,
            "url": "https://unseen-example-domain.test/a",
            "by": good_author,
            "time": WHEN,
        },
    ]
    unseen, good, bad, author = predict(model, stories)
    assert good > unseen > bad
    assert author > unseen


def test_minimum_functionality_on_strong_signal(fitted):
    """Test stories of the top decile of domain track record score above those of the bottom
    decile, in truth and in prediction: the model reads the strongest signal in the data."""
    model, data = fitted
    config = model.featurizer.config
    x = split_features(model.featurizer.tokenizer, model.vectors, config, data).test
    out = model.predict_log_features(x)[:, 0]
    lift = x.dense[:, config.dense_names.index("domain_lift")]  # from before the test period
    top, bottom = lift >= np.quantile(lift, 0.9), lift <= np.quantile(lift, 0.1)
    y = np.log1p(data.test["score"].astype(float).clip(lower=0).to_numpy())
    assert y[top].mean() > y[bottom].mean()  # the signal is real...
    assert out[top].mean() > out[bottom].mean() + 0.2  # ...and the model uses it
