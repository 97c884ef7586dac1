"""A linear score of the title's words: TF-IDF (word 1-2 grams) + ridge on log1p(score).

It feeds the wide part of the network as one number (Wide & Deep's wide side reads sparse word
features; this is that linear model, fitted by ridge instead of jointly, which the validation split
preferred). Training rows get *cross-fitted* scores: each from a ridge that never saw that row,
so the network cannot learn to trust a score that memorised its own label. Every later story gets
the score of the ridge fitted on all training rows.

The bundle keeps only what scoring needs, each term's two weights (``terms.npz``, no pickle):
scoring imports neither scikit-learn nor scipy, which only fitting needs (imported there).
"""

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0)
FOLDS = 5
TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # scikit-learn's default, which the vectorizer is given


def _vectorizer() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    # TextScore.__call__ repeats this analyzer (lower case, the token pattern, 1-2 grams)
    return TfidfVectorizer(
        ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=TOKEN_PATTERN
    )


class TextScore:
    """A pure-Python copy of the fitted vectorizer + ridge's arithmetic, for scoring.

    ``vectorizer.transform`` + ``ridge.predict`` pay a sparse-matrix set-up per call whatever the
    batch; the service scores one to a few titles per call (figures: benchmarks/RESULTS.md).
    The score is
    ``intercept + sum_t w_t * coef_t / ||w||`` with ``w_t = (1 + log tf_t) * idf_t`` over the
    title's known terms (sublinear tf, l2 norm): the same number from a dict lookup per term.
    A test checks it against scikit-learn's own (``sklearn_score``, on a freshly fitted model).
    """

    def __init__(self, terms: dict[str, tuple[float, float]], intercept: float, alpha: float):
        # term -> (idf * coef, idf ** 2): a term seen once adds these to the dot and the norm
        self.terms, self.intercept, self.alpha = terms, intercept, alpha
        self.pattern = re.compile(TOKEN_PATTERN)
        self.fitted: tuple[Any, Any] | None = None  # (vectorizer, ridge) when fitted here

    @classmethod
    def from_sklearn(cls, vectorizer: Any, ridge: Any) -> "TextScore":
        idf, coef = vectorizer.idf_.tolist(), ridge.coef_.tolist()
        terms = {
            term: (idf[i] * coef[i], idf[i] * idf[i]) for term, i in vectorizer.vocabulary_.items()
        }
        model = cls(terms, float(ridge.intercept_), float(ridge.alpha))
        model.fitted = (vectorizer, ridge)
        return model

    def __call__(self, titles: Sequence[str]) -> np.ndarray:
        terms, pattern, out = self.terms, self.pattern, []
        for title in titles:
            words = pattern.findall(title.lower())
            grams = words + [f"{a} {b}" for a, b in pairwise(words)]
            if len(set(grams)) == len(grams):  # every term once (most titles): tf = 1
                found = [f for f in map(terms.get, grams) if f is not None]
                dot = sum(map(itemgetter(0), found))  # the same sums as over generators, faster
                norm = sum(map(itemgetter(1), found))
            else:  # sublinear tf: (1 + log tf) scales both the weight and its square
                dot = norm = 0.0
                for gram, count in Counter(g for g in grams if g in terms).items():
                    scale = 1.0 + math.log(count)
                    dot += scale * terms[gram][0]
                    norm += scale * scale * terms[gram][1]
            out.append(self.intercept + (dot / math.sqrt(norm) if norm > 0 else 0.0))
        return np.array(out, dtype=np.float64)

    def sklearn_score(self, titles: Sequence[str]) -> np.ndarray:
        """The reference: scikit-learn's own transform and predict (a model fitted here)."""
        if self.fitted is None:
            raise ValueError("sklearn_score needs the fitted scikit-learn objects (TextScore.fit)")
        vectorizer, ridge = self.fitted
        return ridge.predict(vectorizer.transform(list(titles)))

    @classmethod
    def fit(cls, titles: Sequence[str], y: np.ndarray, alpha: float) -> "TextScore":
        from sklearn.linear_model import Ridge

        vectorizer = _vectorizer().fit(titles)
        return cls.from_sklearn(vectorizer, Ridge(alpha=alpha).fit(vectorizer.transform(titles), y))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        weights = np.array(list(self.terms.values()), dtype=np.float64).reshape(-1, 2)
        np.savez(directory / "terms.npz", terms=np.array(list(self.terms)), weights=weights)
        meta = {"alpha": self.alpha, "intercept": self.intercept, "token_pattern": TOKEN_PATTERN}
        (directory / "text_score.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path) -> "TextScore":
        meta = json.loads((directory / "text_score.json").read_text())
        with np.load(directory / "terms.npz", allow_pickle=False) as npz:
            weights = map(tuple, npz["weights"].tolist())
            terms = dict(zip(npz["terms"].tolist(), weights, strict=True))
        return cls(terms, meta["intercept"], meta["alpha"])


def fit_text_score(
    train: tuple[Sequence[str], np.ndarray], valid: tuple[Sequence[str], np.ndarray], seed: int = 0
) -> tuple[TextScore, np.ndarray]:
    """The ridge on all training titles (alpha by validation Spearman) and the training rows'
    cross-fitted scores."""
    from scipy.stats import spearmanr
    from sklearn.model_selection import KFold

    titles, y = np.asarray(train[0], dtype=object), np.asarray(train[1])
    best = None
    for alpha in ALPHAS:
        model = TextScore.fit(titles, y, alpha)
        rho = spearmanr(valid[1], model(valid[0])).statistic
        if best is None or rho > best[0]:
            best = (rho, model)
    model = best[1]
    crossed = np.zeros(len(titles))
    folds = KFold(FOLDS, shuffle=True, random_state=seed).split(titles)
    for fit_rows, score_rows in folds:
        fold = TextScore.fit(titles[fit_rows], y[fit_rows], model.alpha)
        crossed[score_rows] = fold(titles[score_rows])
    return model, crossed
