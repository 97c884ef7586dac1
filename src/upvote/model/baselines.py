"""The simpler models ours is measured against, and that ``upvote train --model`` can ship.

- constant: the training rows' mean log1p(score) (in the report only);
- ``ridge``: TF-IDF on the title (word 1-2 grams), with ``metadata`` our standardised dense
  features too (title form, domain/author track records, era): a strong, simple model;
- ``gbm``: gradient-boosted trees (scikit-learn's HistGradientBoosting) on the dense features
  (the metadata and the title score, text_score.py).

Each is tuned on the validation split only (ridge's alpha; the trees stop early on a slice of the
training rows), never on the test split. To stand in for the network in a bundle, each gives the
same five outputs (``inference.py``): the mean; three quantile "heads" equal to the mean, which
the validation shift then turns into empirical residual quantiles; and a logit of
P(score >= reach) from the mean and the validation residuals' spread (a logistic residual).
They are saved with skops (no pickle: only scikit-learn's own types are loaded).
"""

import json
import math
from pathlib import Path

import numpy as np
import skops.io as sio
from scipy import sparse
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge

from upvote.model.features import Features
from upvote.model.inference import CLIP, dense_scale

ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0)
KINDS = ("mlp", "ridge", "gbm")
# the types skops may rebuild besides scikit-learn's defaults (the trees' node arrays)
TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


class PointModel:
    """A model of the mean log1p(score) dressed with the network's five outputs."""

    kind = ""

    def __init__(self, reach: float = 100.0, spread: float = 1.0):
        self.reach = reach
        self.spread = spread  # sd of the validation residuals (set by ``calibrate_spread``)

    def mean(self, x: Features) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: Features) -> np.ndarray:
        mean = self.mean(x).astype(np.float32)
        scale = max(self.spread, 1e-6) * math.sqrt(3.0) / math.pi  # logistic with that sd
        logit = (mean - math.log1p(self.reach)) / scale
        return np.column_stack([mean, mean, mean, mean, logit]).astype(np.float32)

    def calibrate_spread(self, x_valid: Features, y_valid: np.ndarray) -> None:
        self.spread = float(np.std(y_valid - self.mean(x_valid)))

    def _save_meta(self, directory: Path, **extra) -> None:
        meta = {"kind": self.kind, "reach": self.reach, "spread": self.spread, **extra}
        (directory / "baseline.json").write_text(json.dumps(meta, indent=2))


class RidgeModel(PointModel):
    kind = "ridge"

    def __init__(self, vectorizer, ridge, shift, scale, metadata: bool, **kw):
        super().__init__(**kw)
        self.vectorizer, self.ridge, self.metadata = vectorizer, ridge, metadata
        self.shift, self.scale = np.asarray(shift), np.asarray(scale)

    def matrix(self, x: Features):
        if x.titles is None:
            raise ValueError("the ridge model reads the titles: featurize with titles")
        words = self.vectorizer.transform(x.titles)
        if not self.metadata:
            return words
        dense = sparse.csr_matrix(np.clip((x.dense - self.shift) / self.scale, -CLIP, CLIP))
        return sparse.hstack([words, dense]).tocsr()

    def mean(self, x: Features) -> np.ndarray:
        return self.ridge.predict(self.matrix(x))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        sio.dump(self.vectorizer, directory / "vectorizer.skops")
        sio.dump(self.ridge, directory / "ridge.skops")
        np.savez(directory / "standardise.npz", shift=self.shift, scale=self.scale)
        self._save_meta(directory, metadata=self.metadata)


class TreeModel(PointModel):
    kind = "gbm"

    def __init__(self, trees, **kw):
        super().__init__(**kw)
        self.trees = trees

    def mean(self, x: Features) -> np.ndarray:
        return self.trees.predict(x.dense)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        sio.dump(self.trees, directory / "trees.skops")
        self._save_meta(directory)


def fit_ridge(
    train: tuple[Features, np.ndarray],
    valid: tuple[Features, np.ndarray],
    metadata: bool = True,
    reach: float = 100.0,
) -> RidgeModel:
    """TF-IDF (+ the dense metadata) + ridge; alpha by validation Spearman."""
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    vectorizer.fit(train[0].titles)
    dense = train[0].dense.astype(np.float64)
    model = RidgeModel(vectorizer, None, dense.mean(0), dense_scale(dense), metadata, reach=reach)
    x_train, x_valid = model.matrix(train[0]), model.matrix(valid[0])
    best = None
    for alpha in ALPHAS:
        ridge = Ridge(alpha=alpha).fit(x_train, train[1])
        rho = spearmanr(valid[1], ridge.predict(x_valid)).statistic
        if best is None or rho > best[0]:
            best = (rho, ridge)
    model.ridge = best[1]
    model.calibrate_spread(*valid)
    return model


def fit_gbm(
    train: tuple[Features, np.ndarray],
    valid: tuple[Features, np.ndarray],
    seed: int = 0,
    reach: float = 100.0,
) -> TreeModel:
    """HistGradientBoosting on the dense features, early-stopped on 10% of the training rows."""
    trees = HistGradientBoostingRegressor(
        max_iter=300,
        learning_rate=0.05,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.1,
        random_state=seed,
    ).fit(train[0].dense, train[1])
    model = TreeModel(trees, reach=reach)
    model.calibrate_spread(*valid)
    return model


def load_baseline(directory: Path) -> PointModel:
    meta = json.loads((directory / "baseline.json").read_text())
    kw = {"reach": meta["reach"], "spread": meta["spread"]}
    if meta["kind"] == "ridge":
        shift_scale = np.load(directory / "standardise.npz")
        return RidgeModel(
            sio.load(directory / "vectorizer.skops"),
            sio.load(directory / "ridge.skops"),
            shift_scale["shift"],
            shift_scale["scale"],
            meta["metadata"],
            **kw,
        )
    if meta["kind"] == "gbm":
        return TreeModel(sio.load(directory / "trees.skops", trusted=TRUSTED), **kw)
    raise ValueError(f"unknown baseline kind {meta['kind']!r} in {directory}")
