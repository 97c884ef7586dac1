"""`upvote train` end to end: data -> tokenizer -> word2vec -> regressor -> evaluation -> bundle.

Selection bias: the shipped stories mix unbiased rows (`unfiltered`, `random_sample`: median
score ~2) with biased ones (`commented_only`: median ~100, `top_only`, and `unknown`). By default
we train, early-stop and test on the unbiased rows only: the model predicts for an ordinary story.
``rows="all"`` adds the biased rows to *training* with `selection` as a feature (set to
`unfiltered` at prediction time); validation and test stay unbiased, so both choices are measured
on the same stories.
"""

import hashlib
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

import upvote
from upvote.data import load_comments, load_stories, time_split
from upvote.embeddings import train as train_word2vec
from upvote.embeddings.params import Word2VecParams
from upvote.model.bundle import UpvoteModel, publish
from upvote.model.evaluate import (
    decile_calibration,
    interval_coverage,
    log_target,
    regression_metrics,
    tfidf_ridge,
    write_report,
)
from upvote.model.features import UNBIASED, FeatureConfig, Featurizer
from upvote.model.regressor import (
    RegressorConfig,
    calibrate_quantiles,
    calibrate_reach,
    fit,
    predict_raw,
)
from upvote.tokenizer import SentencePieceTokenizer


@dataclass
class TrainOptions:
    rows: str = "unbiased"  # "unbiased" or "all" (see the module docstring)
    max_rows: int | None = None  # only the N most recent unbiased stories (quick runs)
    vocab_size: int = 8000
    comments: bool = True  # add the shipped comments to the tokenizer/word2vec corpus
    corpus: list[str] = field(default_factory=list)  # extra text files for word2vec
    word2vec: Word2VecParams = field(
        default_factory=lambda: Word2VecParams(vector_size=100, min_count=3, epochs=5)
    )
    features: FeatureConfig = field(default_factory=FeatureConfig)
    regressor: RegressorConfig = field(default_factory=RegressorConfig)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Data:
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    snapshot: str  # hash of the rows used: which data a bundle was trained on


def prepare_data(stories: pd.DataFrame, options: TrainOptions) -> Data:
    """Choose rows (selection bias!) and split them by time; valid/test are always unbiased."""
    if "selection" not in stories.columns:  # a pulled dataset: every story of its period
        stories = stories.assign(selection="unfiltered")
    unbiased = stories[stories["selection"].isin(UNBIASED)]
    if options.max_rows:
        unbiased = unbiased.sort_values("time", kind="stable").tail(options.max_rows)
    split = time_split(unbiased)
    train = pd.concat([split.train, split.undated])
    if options.rows == "all":
        valid_start = split.valid["time"].min()
        biased = stories[~stories["selection"].isin(UNBIASED)]
        biased = biased[biased["time"].isna() | (biased["time"] < valid_start)]
        train = pd.concat([train, biased])
    elif options.rows != "unbiased":
        raise ValueError(f"rows must be 'unbiased' or 'all', not {options.rows!r}")
    for name, part in (("train", train), ("valid", split.valid), ("test", split.test)):
        if len(part) < 10:
            raise ValueError(
                f"only {len(part)} {name} stories: need dated stories with selection in "
                f"{UNBIASED} (have {len(unbiased)}); pull more data or raise --max-rows"
            )
    keys = pd.concat([train, split.valid, split.test])[["id", "time", "title", "score"]]
    snapshot = hashlib.sha256(pd.util.hash_pandas_object(keys, index=False).to_numpy()).hexdigest()
    return Data(train, split.valid, split.test, snapshot[:16])


class TextFileCorpus:
    """A text file as word2vec sentences of SentencePiece pieces, re-iterable, read in chunks.

    text8 is one 100M-character line, so lines are cut into chunks of ~1000 words.
    """

    def __init__(self, path: str | Path, tokenizer: SentencePieceTokenizer, words: int = 1000):
        self.path, self.tokenizer, self.words = Path(path), tokenizer, words

    def __iter__(self) -> Iterator[list[str]]:
        with open(self.path, encoding="utf-8", errors="replace") as f:
            rest: list[str] = []
            for line in f:
                rest += line.split()
                while len(rest) >= self.words:
                    chunk, rest = rest[: self.words], rest[self.words :]
                    yield self.tokenizer.tokenize(" ".join(chunk))
            if rest:
                yield self.tokenizer.tokenize(" ".join(rest))


class Corpus:
    """Titles (+ comments) as pieces, then any extra files: what word2vec reads."""

    def __init__(self, texts: list[str], tokenizer: SentencePieceTokenizer, files: list[str]):
        self.sentences = tokenizer.tokenize_batch(texts)
        self.files = [TextFileCorpus(p, tokenizer) for p in files]

    def __iter__(self) -> Iterator[list[str]]:
        yield from self.sentences
        for corpus in self.files:
            yield from corpus


def code_version() -> str:
    """upvote's version + the git commit of the source tree when there is one."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{upvote.__version__}+{sha}" if sha else upvote.__version__


def fit_model(
    tokenizer: SentencePieceTokenizer,
    vectors,
    features: FeatureConfig,
    regressor: RegressorConfig,
    data: Data,
) -> tuple[UpvoteModel, list[dict], int]:
    """Featurize, fit the network, shift the quantile heads on the validation split."""
    featurizer = Featurizer(tokenizer, vectors.key_to_index, features)
    x_train, x_valid = featurizer.transform(data.train), featurizer.transform(data.valid)
    y_train, y_valid = log_target(data.train["score"]), log_target(data.valid["score"])
    result = fit(vectors.vectors, features, regressor, (x_train, y_train), (x_valid, y_valid))
    raw_valid = predict_raw(result.net, x_valid)
    offsets = calibrate_quantiles(raw_valid, y_valid)
    hit = (y_valid >= np.log1p(regressor.reach)).astype(float)
    reach_offset = calibrate_reach(raw_valid[:, 4], hit)
    unbiased = data.train[data.train["selection"].isin(UNBIASED)]
    scores = unbiased["score"].astype("float64").clip(lower=0).fillna(0).to_numpy()
    model = UpvoteModel(
        featurizer, vectors, result.net, regressor, offsets, scores, reach_offset=reach_offset
    )
    return model, result.history, result.best_epoch


def evaluate(model: UpvoteModel, data: Data, report_dir: Path) -> dict:
    """Test-split metrics of ``model`` vs the baselines (fitted here) + the report files."""
    test, y = data.test, log_target(data.test["score"])
    y_train = log_target(data.train["score"][data.train["selection"].isin(UNBIASED)])
    ours = model.predict_log(test)
    # fitted on the unbiased training rows whatever `rows` is: the same baseline for both choices
    tfidf, alpha = tfidf_ridge(data.train[data.train["selection"].isin(UNBIASED)], data.valid)
    ablation_features = replace(model.featurizer.config, domain=False, time=False, length=False)
    ablation, _, _ = fit_model(
        model.featurizer.tokenizer, model.vectors, ablation_features, model.regressor, data
    )
    predictions = {
        "ours": ours[:, 0],
        "ablation": ablation.predict_log(test)[:, 0],
        "tfidf_ridge": tfidf(test),
        "constant": np.full(len(test), y_train.mean()),
    }
    results: dict = {name: regression_metrics(y, p) for name, p in predictions.items()}
    featurizer = model.featurizer
    raw = predict_raw(model.net, featurizer.transform(test, selection="unfiltered"))
    reach = ours[:, 4]
    hit = (y >= np.log1p(model.regressor.reach)).astype(float)
    results |= {
        "version": model.version,
        "rows": model.metadata.get("options", {}).get("rows", "unbiased"),
        "n_train": len(data.train),
        "n_valid": len(data.valid),
        "n_test": len(test),
        "test_from": str(test["time"].min()),
        "test_to": str(test["time"].max()),
        "tfidf_alpha": alpha,
        "extras": [
            name
            for name in ("domain", "time", "length", "selection")
            if getattr(model.featurizer.config, name)
        ],
        "beats_constant": results["ours"]["log_rmse"] < results["constant"]["log_rmse"],
        "beats_tfidf": results["ours"]["log_rmse"] < results["tfidf_ridge"]["log_rmse"],
        "coverage": {
            "uncalibrated": interval_coverage(y, np.sort(raw[:, 1:4], axis=1)),
            "calibrated": interval_coverage(y, ours[:, 1:4]),
        },
        "reach": {
            "threshold": model.regressor.reach,
            "base_rate": float(hit.mean()),
            "mean_predicted": float(reach.mean()),
            "mean_predicted_uncalibrated": float(np.mean(1.0 / (1.0 + np.exp(-raw[:, 4])))),
            "brier": float(np.mean((reach - hit) ** 2)),
            "brier_constant": float(np.mean((hit.mean() - hit) ** 2)),
        },
        "empty_titles": int((featurizer.transform(test).dense[:, 0] > 0).sum()),
        "decile_calibration": decile_calibration(y, ours[:, 0]).reset_index().to_dict("records"),
    }
    history = model.metadata.get("history", [])
    best_epoch = model.metadata.get("best_epoch", 0)
    results["ours"]["best_epoch"] = best_epoch
    results["report"] = str(
        write_report(report_dir, results, test, predictions, ours[:, 1:4], history)
    )
    return results


def train(
    options: TrainOptions | None = None,
    registry_dir: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> tuple[Path, dict]:
    """Run the whole pipeline and publish the bundle; returns (bundle folder, results)."""
    options = options or TrainOptions()
    if options.rows == "all" and not options.features.selection:
        options = replace(options, features=replace(options.features, selection=True))
    timings: dict[str, float] = {}
    start = clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now
        log(f"  {name}: {timings[name]:.1f} s")

    stories = load_stories()
    data = prepare_data(stories, options)
    log(
        f"data: {len(stories)} stories -> train {len(data.train)}, valid {len(data.valid)}, "
        f"test {len(data.test)} (rows={options.rows}, snapshot {data.snapshot})"
    )
    step("data")
    if options.max_rows:  # a small-budget run: only the training titles
        titles = data.train["title"].dropna().tolist()
    else:  # every title except validation/test ones: no held-out text reaches the embeddings
        titles = stories.drop(index=data.valid.index.union(data.test.index))["title"]
        titles = titles.dropna().tolist()
    # pieces are learned on titles (what we predict from); comments only add word2vec contexts
    tokenizer = SentencePieceTokenizer.train(titles, vocab_size=options.vocab_size)
    texts = titles + (load_comments()["text"].dropna().tolist() if options.comments else [])
    step("tokenizer")
    vectors = train_word2vec(Corpus(texts, tokenizer, options.corpus), options.word2vec)
    log(f"word2vec: {len(vectors.index_to_key)} pieces x {vectors.vectors.shape[1]}")
    step("word2vec")
    model, history, best_epoch = fit_model(
        tokenizer, vectors, options.features, options.regressor, data
    )
    step("regressor")
    version = datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + f"-{data.snapshot[:6]}"
    model.version = version
    model.metadata = {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "data_snapshot": data.snapshot,
        "rows": {"train": len(data.train), "valid": len(data.valid), "test": len(data.test)},
        "options": options.to_dict(),
        "history": history,
        "best_epoch": best_epoch,
    }
    with tempfile.TemporaryDirectory(prefix="upvote-report-") as tmp:
        results = evaluate(model, data, Path(tmp))
        step("evaluation")
        timings["total"] = round(time.perf_counter() - start, 2)
        model.metadata |= {"metrics": _summary(results), "timings": timings}
        bundle = publish(model, version, registry_dir, extra={"report": Path(tmp)})
    results["report"] = str(bundle / "report" / "report.html")
    return bundle, results


def _summary(results: dict) -> dict:
    keys = ("ours", "ablation", "tfidf_ridge", "constant", "coverage", "reach", "beats_constant")
    return {k: results[k] for k in (*keys, "beats_tfidf")}
