"""Track records (history.py) and the metadata features: no story's own or later score leaks in."""

import numpy as np
import pandas as pd
import pytest

from upvote.data.dataset import load_stories
from upvote.embeddings.vectors import KeyedVectors
from upvote.model.features import FeatureConfig, Featurizer
from upvote.model.history import HistoryConfig, HistoryStore
from upvote.model.metadata import author_key, domain_key, hour_of_week, title_form
from upvote.model.splits import mark_known_urls, prepare_data, split_features
from upvote.model.text_score import TextScore, fit_text_score
from upvote.tokenizer import SentencePieceTokenizer


def stories(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["url", "by", "time", "score"])
    df["time"] = pd.to_datetime(df["time"])
    return df


TOY = stories(
    [
        ("https://a.com/1", "ann", "2016-01-01 10:00", 500),
        ("https://a.com/2", "bob", "2016-01-02 10:00", 300),
        ("https://b.org/x", "ann", "2016-01-02 10:00", 1),  # same time as the row above
        ("https://a.com/3", "cat", "2016-01-03 10:00", 2),
        ("https://a.com/4", "ann", "2016-01-04 10:00", 900),
        (None, None, None, 50),  # undated
    ]
)


def test_causal_sees_only_strictly_earlier_stories():
    store = HistoryStore.fit(TOY)
    h = store.causal(TOY, TOY)  # domain count, domain lift, author count, author lift
    assert h[:, 0].tolist() == [0, 1, 0, 2, 3, 0]  # a.com: 0, 1, -, 2, 3 earlier stories
    assert h[:, 2].tolist() == [0, 0, 1, 0, 2, 0]  # ann: row 2 sees row 0 only (not row 1's time)
    assert h[0, 1] == 0 and h[5].tolist() == [0, 0, 0, 0]  # no past: no lift
    assert h[1, 1] == 0  # a.com's one earlier story is all the past: it is the prior
    assert h[3, 1] > 0  # a.com (500, 300) vs the prior that b.org's 1 point pulls down


@pytest.mark.parametrize("row", range(5))
def test_own_and_later_scores_never_reach_a_story(row):
    """Change the story's own score and every later (or same-time) one: its features stay."""
    before = HistoryStore.fit(TOY).causal(TOY, TOY)
    changed = TOY.copy()
    later = changed["time"] >= changed["time"][row]
    changed.loc[later, "score"] = changed.loc[later, "score"] * 7 + 1000
    after = HistoryStore.fit(changed).causal(changed, changed)
    np.testing.assert_array_equal(after[row], before[row])
    # ...while an earlier story's score does reach it (the test can fail)
    if row in (3, 4):
        earlier = TOY.copy()
        earlier.loc[0, "score"] = 0
        assert not np.array_equal(
            HistoryStore.fit(earlier).causal(earlier, earlier)[row], before[row]
        )


def test_frozen_store_lookup_and_size_bound(tmp_path):
    store = HistoryStore.fit(TOY, HistoryConfig(smoothing=2.0, max_keys=1))
    assert list(store.tables["domain"].keys) == ["a.com"]  # the most frequent key is kept
    looked = store.lookup({"domain": ["a.com", "b.org", ""], "author": ["ann", "zed", ""]})
    assert looked[:, 0].tolist() == [4, 0, 0]
    assert looked[1:, 1].tolist() == [0, 0]  # unseen or missing: the prior, lift 0
    store.save(tmp_path / "h")
    again = HistoryStore.load(tmp_path / "h")
    assert again.cutoff == store.cutoff == "2016-01-04 10:00:00"
    np.testing.assert_array_equal(
        again.lookup({"domain": ["a.com"], "author": ["ann"]}),
        store.lookup({"domain": ["a.com"], "author": ["ann"]}),
    )


def test_keys_and_title_form():
    assert domain_key("https://www.Example.com:8080/a?b") == "example.com"
    assert domain_key("https://github.com/Torvalds/linux") == "github.com/torvalds"
    assert domain_key(None) == domain_key("") == ""
    assert author_key(" PG ") == "pg" and author_key(float("nan")) == ""
    form = dict(
        zip(("show", "ask", "tell", "launch"), title_form("Show HN: x (2015) [pdf]?"), strict=False)
    )
    assert form == {"show": 1.0, "ask": 0.0, "tell": 0.0, "launch": 0.0}
    assert title_form("Ask HN: why?")[1] == 1.0 and title_form("Launch HN: Y")[3] == 1.0
    monday = np.array(["2024-01-01T00:30", "2024-01-07T23:00", "NaT"], dtype="datetime64[ns]")
    assert hour_of_week(monday).tolist() == [0, 167, 168]


def test_url_known_only_for_sources_that_carry_urls():
    df = pd.DataFrame({"url": [None, "https://a.com", None, None], "source": ["x", "x", "y", "y"]})
    assert mark_known_urls(df)["url_known"].tolist() == [True, True, False, False]


@pytest.fixture(scope="module")
def sample_split():
    data = prepare_data(load_stories())
    titles = data.train["title"].dropna().tolist()[:3000]
    tokenizer = SentencePieceTokenizer.train(titles, vocab_size=300)
    pieces = [tokenizer.id_to_piece(i) for i in range(len(tokenizer))]
    vectors = KeyedVectors(pieces, np.random.default_rng(0).normal(size=(len(pieces), 4)))
    return tokenizer, vectors, data


def test_no_split_sees_its_own_or_later_scores(sample_split):
    """On the shipped sample: the scores of validation and test stories, and of every story
    from the validation period on, never reach training or validation features; test features
    come from stories before the test period only."""
    tokenizer, vectors, data = sample_split
    config = FeatureConfig()
    before = split_features(tokenizer, vectors, config, data)
    valid_start = data.valid["time"].min()
    scrambled = data.history.copy()
    late = scrambled["time"] >= valid_start
    scrambled.loc[late, "score"] = (
        scrambled.loc[late, "score"].sample(frac=1, random_state=1).to_numpy() + 77
    )
    changed = type(data)(data.train, data.valid, data.test, scrambled, data.snapshot)
    after = split_features(tokenizer, vectors, config, changed)
    np.testing.assert_array_equal(after.train.dense, before.train.dense)
    np.testing.assert_array_equal(after.valid.dense, before.valid.dense)
    # the test split's store is frozen at the test start: validation scores are its past...
    assert not np.array_equal(after.test.dense, before.test.dense)
    # ...but no test score is
    test_start = data.test["time"].min()
    only_test = data.history.copy()
    in_test = only_test["time"] >= test_start
    only_test.loc[in_test, "score"] = 0
    again = split_features(
        tokenizer,
        vectors,
        config,
        type(data)(data.train, data.valid, data.test, only_test, data.snapshot),
    )
    np.testing.assert_array_equal(again.test.dense, before.test.dense)


def test_the_bundle_store_ends_at_the_test_split(sample_split):
    """The shipped sample holds top stories of 2026: they are after the data the model is tested
    on, so no track record may include them (they would be the future of the next week)."""
    _, _, data = sample_split
    stories = load_stories()
    assert stories["time"].max() > data.test["time"].max()  # the sample does have later rows
    assert data.history["time"].max() == data.test["time"].max()
    assert HistoryStore.fit(data.history).cutoff == str(data.test["time"].max())


def test_metadata_changes_the_features_the_title_does_not_need(sample_split):
    tokenizer, vectors, data = sample_split
    store = HistoryStore.fit(data.history)
    featurizer = Featurizer(tokenizer, vectors.key_to_index, FeatureConfig(text_score=False), store)
    names = featurizer.config.dense_names
    popular = data.history.dropna(subset=["url"])
    top = popular.groupby(popular["url"].map(domain_key))["score"].agg(["size", "mean"])
    good = top[(top["size"] >= 5)].sort_values("mean").index[-1]
    base = {"title": "A new database", "time": "2016-09-20T12:00:00Z"}
    x = featurizer.transform([base, {**base, "url": f"https://{good}/x"}, {**base, "url": ""}])
    lift, url_unknown, no_url = (names.index(n) for n in ("domain_lift", "url_unknown", "no_url"))
    assert x.dense[0, url_unknown] == 1 and x.dense[1, url_unknown] == 0
    assert x.dense[1, lift] > 0 and x.dense[0, lift] == 0
    assert x.dense[2, no_url] == 1


def test_text_score_fast_path_equals_scikit_learn(sample_split, tmp_path):
    """The service's pure-Python TF-IDF + ridge arithmetic gives scikit-learn's numbers."""
    _, _, data = sample_split
    titles = [str(t) for t in data.train["title"].fillna("")]
    y = np.log1p(data.train["score"].astype(float).clip(lower=0).to_numpy())
    valid = [str(t) for t in data.valid["title"].fillna("")]
    y_valid = np.log1p(data.valid["score"].astype(float).clip(lower=0).to_numpy())
    model, crossed = fit_text_score((titles, y), (valid, y_valid))
    odd = ["", "the the the", "Ünïcödé wörds (2015) [pdf]", "C++ vs. C#: a 10x speed-up?"]
    probe = valid[:300] + odd
    fast = np.concatenate([model(probe[i : i + 10]) for i in range(0, len(probe), 10)])
    np.testing.assert_allclose(fast, model.sklearn_score(probe), rtol=0, atol=1e-9)
    # the bundle keeps the terms' weights only: the loaded score is the same number
    model.save(tmp_path / "text_score")
    loaded = TextScore.load(tmp_path / "text_score")
    assert loaded.fitted is None and len(loaded.terms) == len(model.terms)
    np.testing.assert_array_equal(loaded(probe), fast)
    # cross-fitted training scores come from ridges that never saw the row: noisier than the
    # in-sample fit, which has memorised its own labels
    in_sample = model.sklearn_score(titles)
    assert np.corrcoef(crossed, y)[0, 1] < np.corrcoef(in_sample, y)[0, 1] - 0.05
