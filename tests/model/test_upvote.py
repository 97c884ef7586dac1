"""The upvote model on the shipped sample: pipeline, bundle round trip, predictions, errors."""

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import upvote
from upvote.cli import app
from upvote.data.dataset import load_stories
from upvote.data.schema import UNBIASED
from upvote.embeddings.params import Word2VecParams
from upvote.model.bundle import OUTPUT_COLUMNS, ModelNotFoundError
from upvote.model.corpus import Corpus, TextFileCorpus
from upvote.model.features import FeatureConfig, Featurizer
from upvote.model.inference import INFER_BATCH, RegressorConfig
from upvote.model.registry import LOCK, list_versions, load_model, publish
from upvote.model.regressor import calibrate_reach, fit, to_numpy
from upvote.model.splits import prepare_data
from upvote.model.train import TrainOptions, train
from upvote.settings import get_settings

SMALL = TrainOptions(
    max_rows=2500,
    features=FeatureConfig(domain=True, time=True),  # every feature path
    seeds=2,
    vocab_size=500,
    comments=False,
    word2vec=Word2VecParams(vector_size=16, min_count=2, epochs=1),
    regressor=RegressorConfig(hidden=(16,), max_epochs=3),
)


def flat(output: str) -> str:
    """CLI output without Rich's error box and line wrapping, for substring checks."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", output).split())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small bundle for the whole module (a few seconds), in its own data dir."""
    data_dir = tmp_path_factory.mktemp("upvote-model")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UPVOTE_DATA_DIR", str(data_dir))
        get_settings.cache_clear()
        bundle, results = train(SMALL, log=lambda _: None)
    get_settings.cache_clear()
    return data_dir, bundle, results


@pytest.fixture
def registry_env(trained, monkeypatch) -> Path:
    """Point UPVOTE_DATA_DIR at the trained bundle's data dir (for the CLI)."""
    monkeypatch.setenv("UPVOTE_DATA_DIR", str(trained[0]))
    get_settings.cache_clear()
    return trained[1]


@pytest.fixture(scope="module")
def model(trained):
    return load_model("latest", registry_dir=trained[1].parent)


@pytest.fixture(scope="module")
def test_titles() -> pd.DataFrame:
    return prepare_data(load_stories(), max_rows=SMALL.max_rows).test


def test_pipeline_publishes_a_complete_bundle(trained):
    _, bundle, results = trained
    latest = bundle.parent / "latest"
    assert latest.is_symlink() and os.readlink(latest) == bundle.name
    assert oct((bundle / "report").stat().st_mode & 0o777) == oct(0o755)
    for name in ("model.json", "metadata.json", "regressor.npz", "vectors.npz", "scores.npy"):
        assert (bundle / name).is_file(), name
    report = bundle / "report"
    for name in ("report.md", "report.html", "calibration.png", "coverage.png", "loss_curves.png"):
        assert (report / name).stat().st_size > 0, name
    hidden = [p.name for p in bundle.parent.iterdir() if p.name.startswith(".")]
    assert hidden == [LOCK]  # no staging folder or temporary link left, only the registry's lock
    # the constant is the train mean: its log RMSE is at least the test standard deviation
    test = prepare_data(load_stories(), max_rows=SMALL.max_rows).test
    y = np.log1p(test["score"].astype(float).clip(lower=0))
    models = ("ours", "title_only", "metadata_only", "tfidf_ridge", "tfidf_metadata_ridge", "gbm")
    for name in (*models, "constant"):
        assert np.isfinite(results[name]["log_rmse"])
    for name in models:
        low, high = results[name]["spearman_ci"]
        assert low <= results[name]["spearman"] <= high
        assert 0 <= results[name]["auc_10"] <= 1
    assert results["ours"]["n_10"] == int((y >= np.log1p(10)).sum())
    seeds = results["ours"]["seeds"]["spearman"]
    assert seeds["sd"] > 0  # two networks with different seeds differ
    assert results["constant"]["log_rmse"] >= y.std(ddof=0) - 1e-9
    assert results["constant"]["log_r2"] <= 1e-9
    markdown = (report / "report.md").read_text()
    extras = "title score + track records + time + era + form + domain"
    label = f"ours: Wide & Deep (title vectors + {extras})"
    assert label in markdown
    assert "TF-IDF + metadata ridge" in markdown and "gradient-boosted trees" in markdown


def test_metadata_records_data_and_code(model, trained):
    meta = model.metadata
    assert re.fullmatch(r"[0-9a-f]{16}", meta["data_snapshot"])
    assert meta["code_version"].startswith(upvote.__version__)
    assert meta["options"]["max_rows"] == SMALL.max_rows
    assert meta["rows"]["test"] == trained[2]["n_test"]
    assert len(meta["history"]) >= 1


def test_bundle_round_trip_gives_identical_predictions(model, trained, test_titles):
    again = upvote.load_model(trained[1].name, registry_dir=trained[1].parent)
    pd.testing.assert_frame_equal(model.predict(test_titles), again.predict(test_titles))
    assert again.version == trained[1].name


def test_predicting_imports_neither_torch_nor_scikit_learn(trained):
    """The service's memory and start-up: a bundle of the default kind is numpy arrays."""
    code = f"""
import sys
from upvote.model.registry import load_model
model = load_model({trained[1].name!r}, registry_dir={str(trained[1].parent)!r})
model.predict_records([{{"title": "Show HN: a tiny database", "url": "https://x.dev"}}])
model.explain("Show HN: a tiny database")
print(sorted(m for m in ("torch", "sklearn", "skops", "scipy.stats") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_bundle_of_an_older_format_is_refused_naming_the_fix(trained, tmp_path):
    old = tmp_path / "models" / "old"
    shutil.copytree(trained[1], old)
    config = json.loads((old / "model.json").read_text())
    (old / "model.json").write_text(json.dumps({**config, "format": 1}))
    with pytest.raises(ModelNotFoundError, match=r"older upvote.*upvote train"):
        load_model("old", registry_dir=old.parent)


def test_predictions_are_finite_ordered_and_in_range(model, test_titles):
    out = model.predict(test_titles)
    assert list(out.index) == list(test_titles.index)
    assert np.isfinite(out.to_numpy()).all()
    assert (out["predicted_score"] >= 0).all()
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()
    assert out["p_reach_100"].between(0, 1).all()
    assert np.allclose(out["predicted_score"], np.expm1(out["predicted_log1p"].clip(lower=0)))
    # a plausible range for HN scores (log1p(5000) ~ 8.5)
    assert out["predicted_log1p"].between(-1, 8.5).all()


def test_titles_only_and_odd_titles(model):
    out = model.predict([{"title": "Show HN: a tiny database"}, {"title": ""}, {"title": None}])
    assert len(out) == 3 and np.isfinite(out.to_numpy()).all()
    with pytest.raises(ValueError, match="title"):
        model.predict([{"url": "http://example.com"}])


def test_extra_features_change_the_prediction(model):
    base = {"title": "Rust is fast", "time": pd.Timestamp("2016-09-10 15:00")}
    other = {**base, "url": "https://github.com/x/y", "time": pd.Timestamp("2016-09-11 03:00")}
    out = model.predict([base, other])
    assert out["predicted_log1p"].iloc[0] != out["predicted_log1p"].iloc[1]


def test_explain_speaks_in_words_and_factors(model):
    story = {"title": "Show HN: Rust database", "url": "https://github.com/x/y", "by": "pg"}
    explanation = model.explain(story)
    assert [w for w, _ in explanation["words"]] == ["Show", "HN:", "Rust", "database"]
    assert {name for name, _ in explanation["factors"]} == {
        "domain history",
        "author history",
        "time",
        "title form",
    }
    values = [c for _, c in explanation["words"] + explanation["factors"]]
    assert all(np.isfinite(values)) and any(c != 0 for c in values)
    # a bare title: same words, and the track records of an unknown url/author
    assert [w for w, _ in model.explain("Show HN: Rust database")["words"]] == [
        "Show",
        "HN:",
        "Rust",
        "database",
    ]


def test_percentile_is_monotone(model):
    values = [model.percentile(s) for s in (0, 1, 5, 50, 500, 10_000)]
    assert values == sorted(values)
    assert values[0] >= 0 and values[-1] == 100.0


def test_prepare_data_keeps_test_unbiased_and_after_train():
    stories = load_stories()
    data = prepare_data(stories)
    assert data.train["time"].max() <= data.valid["time"].min()
    assert data.valid["time"].max() <= data.test["time"].min()
    assert set(data.train["selection"]) | set(data.test["selection"]) <= set(UNBIASED)
    every = prepare_data(stories, rows="all")
    pd.testing.assert_frame_equal(every.test, data.test)
    assert len(every.train) > len(data.train)
    assert (every.train["time"].dropna() < data.valid["time"].min()).all()
    assert every.snapshot != data.snapshot


def test_publish_refuses_to_overwrite(model, tmp_path):
    publish(model, "v1", tmp_path)
    with pytest.raises(FileExistsError):
        publish(model, "v1", tmp_path)
    assert os.readlink(tmp_path / "latest") == "v1"
    (tmp_path / "latest").unlink()
    (tmp_path / "latest").write_text("v1\n")  # a registry from before the link
    assert upvote.load_model(registry_dir=tmp_path).version == "v1"
    assert list_versions(tmp_path) == ["v1"]


def test_cli_predict_csv_and_parquet(registry_env, tmp_path):
    runner = CliRunner()
    source = pd.DataFrame(
        {"title": ["Ask HN: how do you learn?", "Rust 2.0 released"], "by": ["a", "b"]}
    )
    source.to_csv(tmp_path / "in.csv", index=False)
    for suffix in (".csv", ".parquet"):
        out = tmp_path / f"out{suffix}"
        result = runner.invoke(app, ["predict", "-i", str(tmp_path / "in.csv"), "-o", str(out)])
        assert result.exit_code == 0, result.output
        written = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
        assert list(written["title"]) == list(source["title"])
        assert {"predicted_score", "predicted_log1p", "p10", "p50", "p90", "p_reach_100"} <= set(
            written.columns
        )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"headline\nhello\n", "missing required column(s) title"),
        (b"", "the file is empty"),
        (b"title\n", "has no rows"),
        ("title\ncaf\xe9\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_cli_predict_bad_input(registry_env, tmp_path, content, message):
    (tmp_path / "in.csv").write_bytes(content)
    args = ["predict", "-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert message in flat(result.output)
    assert not (tmp_path / "o.csv").exists()


def test_cli_unknown_version_and_no_model(registry_env, tmp_path, monkeypatch):
    (tmp_path / "in.csv").write_text("title\nhello\n")
    args = ["predict", "-i", str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv")]
    result = CliRunner().invoke(app, [*args, "--model", "nope"])
    assert result.exit_code == 1
    assert "unknown model version 'nope'" in flat(result.output)
    monkeypatch.setenv("UPVOTE_DATA_DIR", str(tmp_path / "empty"))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "run `upvote train` first" in flat(result.output)
    with pytest.raises(ModelNotFoundError):
        upvote.load_model()


def test_cli_evaluate_rewrites_the_report(registry_env):
    report = registry_env / "report" / "report.md"
    report.unlink()
    result = CliRunner().invoke(app, ["evaluate"])
    assert result.exit_code == 0, result.output
    assert "TF-IDF + ridge" in result.output
    assert report.is_file()


def test_token_rows_pad_cut_and_mask(model):
    featurizer = model.featurizer
    unknown = int(np.flatnonzero(featurizer.piece_to_row < 0)[0])  # e.g. <unk>
    known = int(np.flatnonzero(featurizer.piece_to_row >= 0)[0])
    limit = featurizer.config.max_tokens
    rows = featurizer.token_rows([[known, unknown], [], [known] * (limit + 5)])
    assert rows.shape == (3, limit)
    expected_first = [featurizer.piece_to_row[known], -1] + [-1] * (limit - 2)
    assert rows[0].tolist() == expected_first
    assert (rows[1] == -1).all()
    assert (rows[2] == featurizer.piece_to_row[known]).all()


def test_extra_corpus_file_is_read_plain_or_gzipped_and_reiterable(model, tmp_path):
    words = " ".join(["anarchism originated as a term of abuse"] * 3000)  # 21,000 words, one line
    plain, packed = tmp_path / "text8", tmp_path / "text8.gz"
    plain.write_text(words)
    packed.write_bytes(gzip.compress(words.encode()))
    chunks = list(TextFileCorpus(plain, model.featurizer.tokenizer))
    assert len(chunks) == 3  # pseudo-documents of at most 10,000 words
    assert chunks == list(TextFileCorpus(plain, model.featurizer.tokenizer))  # re-iterable
    assert chunks == list(TextFileCorpus(packed, model.featurizer.tokenizer))
    joined = " ".join("".join(c).replace("▁", " ") for c in chunks).split()
    assert joined == words.split()
    both = list(Corpus(["Show HN: x"], model.featurizer.tokenizer, [str(plain)]))
    assert len(both) == 4 and both[1:] == chunks


def test_reach_calibration_matches_the_held_out_rate():
    logits = np.random.default_rng(0).normal(-1.0, 1.0, 2000)  # ~30% predicted: far too high
    hit = np.zeros(2000)
    hit[:9] = 1
    shift = calibrate_reach(logits, hit)
    assert shift < 0
    assert np.mean(1 / (1 + np.exp(-(logits + shift)))) == pytest.approx(9.5 / 2001, rel=1e-6)


def test_time_as_datetime_iso_string_or_unix_seconds(model):
    moment = pd.Timestamp("2016-09-19 15:46:40")
    stories = [
        {"title": "Rust is fast", "time": value}
        for value in (moment, "2016-09-19T17:46:40+02:00", int(moment.timestamp()))
    ]
    out = [model.predict([story])["predicted_log1p"].iloc[0] for story in stories]
    assert out[0] == out[1] == out[2]


def _plain(value):
    """A DataFrame cell as the service passes it: None for missing, datetime for a Timestamp."""
    if pd.isna(value):
        return None
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


TIME_FORMATS = {
    "datetime": lambda t: t,
    "iso": lambda t: pd.Timestamp(t).tz_localize("UTC").tz_convert("Asia/Kolkata").isoformat(),
    "unix": lambda t: int(pd.Timestamp(t).timestamp()),
}


@pytest.mark.parametrize("time_format", list(TIME_FORMATS))
@pytest.mark.parametrize("columns", [["title", "url", "by", "time"], ["title"]])
def test_records_path_matches_the_dataframe_path(model, columns, time_format):
    """The service's pandas-free ``predict_records`` and the batch ``predict(DataFrame)`` agree.

    Real stories, some without url or time; the DataFrame is large enough for the batched
    forward pass, the records go one at a time and in the service's batches of 64.
    """
    stories = load_stories().sample(INFER_BATCH + 100, random_state=0)[columns]
    if "time" in columns:
        assert stories["url"].isna().any() and stories["time"].isna().any()
    frame = model.predict(stories).iloc[:300]
    records = [{k: _plain(v) for k, v in row.items()} for row in stories.to_dict("records")[:300]]
    for record in records:
        if record.get("time") is not None:
            record["time"] = TIME_FORMATS[time_format](record["time"])
    one_by_one = [model.predict_records([r])[0] for r in records[:100]]
    batched = [out for i in range(0, 300, 64) for out in model.predict_records(records[i : i + 64])]
    for outputs in (one_by_one, batched):
        assert [list(out) for out in outputs] == [list(OUTPUT_COLUMNS)] * len(outputs)
        got = np.array([list(out.values()) for out in outputs])
        assert np.allclose(got, frame.iloc[: len(got)].to_numpy(), rtol=1e-5, atol=1e-6)
    assert np.allclose(model.predict(records).to_numpy(), frame.to_numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("extras", "regressor"),
    [
        (False, RegressorConfig(hidden=(16,), max_epochs=2)),
        (True, RegressorConfig(hidden=(16,), max_epochs=2)),
        (True, RegressorConfig(hidden=(16, 8), wide=True, fine_tune=True, max_epochs=2)),
        (True, RegressorConfig(hidden=(8,), activation="silu", max_epochs=1)),
    ],
    ids=["title-only", "extras", "wide-finetuned-2-layers", "silu"],
)
def test_numpy_inference_equals_the_torch_network(model, extras, regressor):
    """Every head of the numpy forward pass = the torch module in eval mode, on real titles."""
    features = FeatureConfig(domain=extras, time=extras, history=extras, era=extras, form=extras)
    featurizer = Featurizer(
        model.featurizer.tokenizer,
        model.vectors.key_to_index,
        features,
        model.featurizer.history,
        model.featurizer.text_score,
    )
    data = prepare_data(load_stories(), max_rows=SMALL.max_rows)
    y_train, y_valid = (
        np.log1p(d["score"].astype(float).clip(lower=0).to_numpy(np.float32))
        for d in (data.train, data.valid)
    )
    x_train, x_valid = featurizer.transform(data.train), featurizer.transform(data.valid)
    vectors = model.vectors.vectors
    net = fit(vectors, features, regressor, (x_train, y_train), (x_valid, y_valid)).net
    # real test titles + an empty one (no known piece: the learned ``empty`` vector)
    stories = pd.concat([data.test, pd.DataFrame({"title": [""]})], ignore_index=True)
    x = featurizer.transform(stories, selection="unfiltered")
    assert (x.tokens < 0).all(axis=1).sum() == 1
    with torch.inference_mode():
        expected = net.eval()(*map(torch.from_numpy, (x.tokens, x.fields, x.dense))).numpy()
    got = to_numpy(net)(x)
    assert got.shape == (len(stories), 5) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
