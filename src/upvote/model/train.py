"""`upvote train` end to end: data -> tokenizer -> word2vec -> regressor -> evaluation -> bundle.

Which rows train and test, and how each split is featurized without seeing its future, is in
``splits.py``; the baselines ours is measured against are in ``baselines.py``. Text that reaches
the tokenizer and word2vec is the titles of stories older than the validation split: no held-out
title, and nothing written after the test period (the shipped comments are from 2020, so they are
off by default).
"""

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np

from upvote.data.dataset import load_comments, load_stories
from upvote.data.schema import UNBIASED
from upvote.embeddings.params import Word2VecParams
from upvote.model import baselines
from upvote.model.bundle import UpvoteModel
from upvote.model.corpus import Corpus, corpus_titles
from upvote.model.evaluate import (
    VALID_KEYS,
    bootstrap_intervals,
    decile_calibration,
    interval_coverage,
    log_target,
    reach_metrics,
    regression_metrics,
    summary,
)
from upvote.model.features import FeatureConfig
from upvote.model.history import HistoryConfig
from upvote.model.inference import RegressorConfig
from upvote.model.profile import build_profile
from upvote.model.registry import publish
from upvote.model.regressor import calibrate_quantiles, calibrate_reach, fit, to_numpy
from upvote.model.report import write_report
from upvote.model.splits import Data, SplitFeatures, prepare_data, split_features
from upvote.tokenizer.sentencepiece import DEFAULT_VOCAB_SIZE, SentencePieceTokenizer
from upvote.tracking.records import Curve
from upvote.version import code_version


@dataclass
class TrainOptions:
    """Every default of `upvote train` (the CLI reads them from here)."""

    rows: str = "unbiased"  # "unbiased" or "all" (splits.py)
    history_rows: str = "all"  # whose scores make track records: "all" dated rows or "unbiased"
    max_rows: int | None = None  # only the N most recent unbiased stories (quick runs)
    vocab_size: int = DEFAULT_VOCAB_SIZE
    comments: bool = False  # add the shipped comments (2020) to the word2vec corpus
    corpus: list[str] = field(default_factory=list)  # extra text files for word2vec
    word2vec: Word2VecParams = field(
        default_factory=lambda: Word2VecParams(vector_size=100, min_count=3, epochs=5)
    )
    features: FeatureConfig = field(default_factory=FeatureConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    regressor: RegressorConfig = field(default_factory=RegressorConfig)
    model: str = "mlp"  # what the bundle ships: "mlp" (Wide & Deep), "ridge" or "gbm"
    seeds: int = 3  # models trained for the report's mean +- sd (the first one is shipped)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainOptions":
        """The inverse of ``to_dict`` (JSON lists back to tuples): a trial of ``upvote tune``
        retrains exactly. An unknown or missing key raises TypeError or KeyError."""
        return cls(
            **d
            | {
                "word2vec": Word2VecParams(**d["word2vec"]),
                "features": FeatureConfig(**d["features"]),
                "history": HistoryConfig(**d["history"]),
                "regressor": RegressorConfig.from_dict(d["regressor"]),
            }
        )


def quick_options(options: TrainOptions) -> TrainOptions:
    """A small budget (seconds, for tests and smoke runs): 4000 rows, dim 32, few epochs."""
    return replace(
        options,
        max_rows=options.max_rows or 4000,
        vocab_size=min(options.vocab_size, 1000),
        comments=False,
        seeds=1,
        word2vec=replace(
            options.word2vec, vector_size=min(options.word2vec.vector_size, 32), epochs=1
        ),
        regressor=replace(
            options.regressor, hidden=(32,), max_epochs=min(options.regressor.max_epochs, 3)
        ),
    )


def fit_model(
    tokenizer: SentencePieceTokenizer,
    vectors,
    features: FeatureConfig,
    regressor: RegressorConfig,
    data: Data,
    history: HistoryConfig | None = None,
    split: SplitFeatures | None = None,
    kind: str = "mlp",
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[UpvoteModel, list[dict], int, SplitFeatures]:
    """Featurize, fit the model of ``kind``, shift the quantile heads on the validation split
    (``on_epoch``: see ``regressor.fit``; the other kinds have no epochs)."""
    split = split or split_features(tokenizer, vectors, features, data, history)
    y_train, y_valid = log_target(data.train["score"]), log_target(data.valid["score"])
    train_, valid_ = (split.train, y_train), (split.valid, y_valid)
    epochs, best_epoch = [], 0
    if kind == "mlp":
        result = fit(vectors.vectors, features, regressor, train_, valid_, on_epoch)
        fitted, epochs, best_epoch = to_numpy(result.net), result.history, result.best_epoch
    elif kind == "ridge":
        fitted = baselines.fit_ridge(train_, valid_, metadata=True, reach=regressor.reach)
    elif kind == "gbm":
        fitted = baselines.fit_gbm(train_, valid_, seed=regressor.seed, reach=regressor.reach)
    else:
        raise ValueError(f"model must be one of {', '.join(baselines.KINDS)}, not {kind!r}")
    model = UpvoteModel(
        split.featurizer,
        vectors,
        fitted,
        regressor,
        [0.0] * 3,
        np.zeros(1),
        dense_mean=split.train.dense.mean(0),
    )
    raw_valid = model.forward(split.valid)
    model.quantile_offsets = np.asarray(calibrate_quantiles(raw_valid, y_valid), dtype=np.float32)
    hit = (y_valid >= np.log1p(regressor.reach)).astype(float)
    model.reach_offset = calibrate_reach(raw_valid[:, 4], hit)
    model.profile = build_profile(  # drift monitoring's reference (profile.py: why this split)
        split.featurizer, data.valid, np.maximum(raw_valid[:, 0], 0.0), "validation split"
    )
    unbiased = data.train[data.train["selection"].isin(UNBIASED)]
    scores = unbiased["score"].astype("float64").clip(lower=0).fillna(0).to_numpy()
    model.train_scores = np.sort(scores)
    return model, epochs, best_epoch, split


def _scored(y: np.ndarray, pred: np.ndarray) -> dict:
    return regression_metrics(y, pred) | bootstrap_intervals(y, pred) | reach_metrics(y, pred)


def evaluate(
    model: UpvoteModel,
    data: Data,
    split: SplitFeatures,
    report_dir: Path,
    seeds: int = 1,
    log: Callable[[str], None] = print,
) -> dict:
    """Test-split metrics of ``model``, more seeds of it, its ablations and the baselines (all
    fitted here, on the same rows), and the report files."""
    test, y = data.test, log_target(data.test["score"])
    y_train, y_valid = log_target(data.train["score"]), log_target(data.valid["score"])
    tokenizer, vectors = model.featurizer.tokenizer, model.vectors
    config, regressor = model.featurizer.config, model.regressor
    ours = model.predict_log_features(split.test)
    seed_predictions = [ours[:, 0]]
    for k in range(1, seeds):
        other = fit_model(
            tokenizer,
            vectors,
            config,
            replace(regressor, seed=regressor.seed + k),
            data,
            split=split,
        )[0]
        seed_predictions.append(other.predict_log_features(split.test)[:, 0])
    log(f"  evaluation: {seeds} seed(s) of ours")
    ablations = {
        "title_only": replace(config, history=False, time=False, era=False, form=False),
        "metadata_only": replace(config, title=False),
    }
    predictions = {"ours": ours[:, 0]}
    on_valid = {"ours": model.forward(split.valid)[:, 0]}
    for name, ablation in ablations.items():
        ablated, _, _, ablation_split = fit_model(tokenizer, vectors, ablation, regressor, data)
        predictions[name] = ablated.predict_log_features(ablation_split.test)[:, 0]
        on_valid[name] = ablated.forward(ablation_split.valid)[:, 0]
    train_, valid_ = (split.train, y_train), (split.valid, y_valid)
    fitted = {
        "tfidf_ridge": baselines.fit_ridge(train_, valid_, metadata=False),
        "tfidf_metadata_ridge": baselines.fit_ridge(train_, valid_, metadata=True),
        "gbm": baselines.fit_gbm(train_, valid_, seed=regressor.seed),
    }
    for name, baseline in fitted.items():
        predictions[name] = baseline.mean(split.test)
        on_valid[name] = baseline.mean(split.valid)
    predictions["constant"] = np.full(len(test), y_train.mean())
    log("  evaluation: ablations and baselines")
    results: dict = {name: _scored(y, p) for name, p in predictions.items()}
    # what the choices were made on: the validation split (never the test split)
    results["validation"] = {
        name: {k: v for k, v in regression_metrics(y_valid, p).items() if k in VALID_KEYS}
        for name, p in on_valid.items()
    }
    per_seed = [regression_metrics(y, p) for p in seed_predictions]
    results["ours"]["seeds"] = {
        key: {
            "mean": float(np.mean([m[key] for m in per_seed])),
            "sd": float(np.std([m[key] for m in per_seed], ddof=1)) if seeds > 1 else 0.0,
        }
        for key in ("spearman", "log_r2", "log_rmse")
    }
    raw = model.forward(split.test)
    reach = ours[:, 4]
    hit = (y >= np.log1p(regressor.reach)).astype(float)
    best_baseline = max(
        ("tfidf_ridge", "tfidf_metadata_ridge", "gbm"), key=lambda k: results[k]["spearman"]
    )
    results |= {
        "version": model.version,
        "rows": model.metadata.get("options", {}).get("rows", "unbiased"),
        "n_train": len(data.train),
        "n_valid": len(data.valid),
        "n_test": len(test),
        "test_from": str(test["time"].min()),
        "test_to": str(test["time"].max()),
        "kind": model.kind,
        "tfidf_alpha": fitted["tfidf_ridge"].ridge.alpha,
        "tfidf_metadata_alpha": fitted["tfidf_metadata_ridge"].ridge.alpha,
        "extras": [
            name
            for name in ("text_score", "history", "time", "era", "form", "domain", "selection")
            if getattr(config, name) and (name != "text_score" or config.title)
        ],
        "best_baseline": best_baseline,
        "beats_constant": results["ours"]["log_rmse"] < results["constant"]["log_rmse"],
        "beats_tfidf": bool(
            results["ours"]["spearman"] > results["tfidf_ridge"]["spearman"]
            and results["ours"]["log_r2"] > results["tfidf_ridge"]["log_r2"]
        ),
        "beats_best_baseline": bool(
            results["ours"]["spearman"] > results[best_baseline]["spearman"]
            and results["ours"]["log_r2"] > results[best_baseline]["log_r2"]
        ),
        "coverage": {
            "uncalibrated": interval_coverage(y, np.sort(raw[:, 1:4], axis=1)),
            "calibrated": interval_coverage(y, ours[:, 1:4]),
        },
        "reach": {
            "threshold": regressor.reach,
            "base_rate": float(hit.mean()),
            "mean_predicted": float(reach.mean()),
            "mean_predicted_uncalibrated": float(np.mean(1.0 / (1.0 + np.exp(-raw[:, 4])))),
            "brier": float(np.mean((reach - hit) ** 2)),
            "brier_constant": float(np.mean((hit.mean() - hit) ** 2)),
        },
        "empty_titles": int((split.test.dense[:, 0] > 0).sum()),
        "decile_calibration": decile_calibration(y, ours[:, 0]).reset_index().to_dict("records"),
    }
    history = model.metadata.get("history", [])
    results["ours"]["best_epoch"] = model.metadata.get("best_epoch", 0)
    results["report"] = str(
        write_report(report_dir, results, test, predictions, ours[:, 1:4], history)
    )
    return results


class Built(NamedTuple):
    """What ``build`` fitted: ``train`` evaluates and publishes it, ``upvote tune`` scores it."""

    options: TrainOptions  # as fitted (``rows="all"`` turns the selection feature on)
    model: UpvoteModel
    data: Data
    split: SplitFeatures
    history: list[dict]  # per regressor epoch: train_loss, train_mse, valid_mse
    best_epoch: int
    timings: dict[str, float]  # seconds per stage
    word2vec_curve: list  # (words done, loss, words/s) along word2vec's training


def build(
    options: TrainOptions | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    log: Callable[[str], None] = print,
) -> Built:
    """Data -> tokenizer -> word2vec -> fitted model, without the evaluation (the costly part:
    more seeds, ablations, baselines) and without writing anything. ``on_epoch`` goes to the
    regressor's ``fit``."""
    from upvote.embeddings.word2vec import train as train_word2vec  # numba: only when training

    options = options or TrainOptions()
    if options.rows == "all" and not options.features.selection:
        options = replace(options, features=replace(options.features, selection=True))
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now
        log(f"  {name}: {timings[name]:.1f} s")

    stories = load_stories()
    data = prepare_data(stories, options.rows, options.max_rows, options.history_rows)
    log(
        f"data: {len(stories)} stories -> train {len(data.train)}, valid {len(data.valid)}, "
        f"test {len(data.test)} (rows={options.rows}, snapshot {data.snapshot})"
    )
    step("data")
    titles = corpus_titles(stories, data, only_train=options.max_rows is not None)
    # pieces are learned on titles (what we predict from); comments only add word2vec contexts
    tokenizer = SentencePieceTokenizer.train(titles, vocab_size=options.vocab_size)
    texts = titles + (load_comments()["text"].dropna().tolist() if options.comments else [])
    step("tokenizer")
    curve = Curve()  # word2vec's loss and words/s, for the tracking run
    corpus = Corpus(texts, tokenizer, options.corpus)
    vectors = train_word2vec(corpus, options.word2vec, progress=curve)
    log(f"word2vec: {len(vectors.index_to_key)} pieces x {vectors.vectors.shape[1]}")
    step("word2vec")
    model, history, best_epoch, split = fit_model(
        tokenizer,
        vectors,
        options.features,
        options.regressor,
        data,
        options.history,
        kind=options.model,
        on_epoch=on_epoch,
    )
    step("regressor")
    return Built(options, model, data, split, history, best_epoch, timings, curve.points)


def train(
    options: TrainOptions | None = None,
    registry_dir: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> tuple[Path, dict]:
    """Run the whole pipeline and publish the bundle; returns (bundle folder, results)."""
    start = time.perf_counter()
    options, model, data, split, history, best_epoch, timings, curve = build(options, log=log)
    version = datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + f"-{data.snapshot[:6]}"
    model.version = version
    model.metadata = {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "data_snapshot": data.snapshot,
        "data_cutoff": split.featurizer.history.cutoff,
        "rows": {"train": len(data.train), "valid": len(data.valid), "test": len(data.test)},
        "options": options.to_dict(),
        "history": history,
        "best_epoch": best_epoch,
        "word2vec_curve": curve,
    }
    with tempfile.TemporaryDirectory(prefix="upvote-report-") as tmp:
        os.chmod(tmp, 0o755)  # copied into the bundle as it is: readable like the rest
        clock = time.perf_counter()
        results = evaluate(model, data, split, Path(tmp), seeds=options.seeds, log=log)
        timings["evaluation"] = round(time.perf_counter() - clock, 2)
        log(f"  evaluation: {timings['evaluation']:.1f} s")
        timings["total"] = round(time.perf_counter() - start, 2)
        model.metadata |= {"metrics": summary(results), "timings": timings}
        bundle = publish(model, version, registry_dir, extra={"report": Path(tmp)})
    results["report"] = str(bundle / "report" / "report.html")
    return bundle, results
