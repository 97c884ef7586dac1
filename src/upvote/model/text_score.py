"""A linear score of the title's words: TF-IDF (word 1-2 grams) + ridge on log1p(score).

It feeds the wide part of the network as one number (Wide & Deep's wide side reads sparse word
features; this is that linear model, fitted by ridge instead of jointly, which the validation split
preferred). Training rows get *cross-fitted* scores: each from a ridge that never saw that row,
so the network cannot learn to trust a score that memorised its own label. Every later story gets
the score of the ridge fitted on all training rows, saved in the bundle with skops (no pickle).
"""

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
import skops.io as sio
from scipy.stats import spearmanr
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold

ALPHAS = (1.0, 3.0, 10.0, 30.0, 100.0)
FOLDS = 5


def _vectorizer() -> TfidfVectorizer:
    # TextScore.__call__ repeats this analyzer (lower case, default token pattern, 1-2 grams)
    return TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)


class TextScore:
    """The fitted vectorizer + ridge, and a pure-Python copy of their arithmetic for scoring.

    ``vectorizer.transform`` + ``ridge.predict`` pay a sparse-matrix set-up per call whatever the
    batch; the service scores one to a few titles per call (figures: benchmarks/RESULTS.md).
    The score is
    ``intercept + sum_t w_t * coef_t / ||w||`` with ``w_t = (1 + log tf_t) * idf_t`` over the
    title's known terms (sublinear tf, l2 norm): the same number from a dict lookup per term.
    A test checks both ways agree.
    """

    def __init__(self, vectorizer: TfidfVectorizer, ridge: Ridge):
        self.vectorizer, self.ridge = vectorizer, ridge
        self.pattern = re.compile(vectorizer.token_pattern)
        idf, coef = vectorizer.idf_.tolist(), ridge.coef_.tolist()
        # term -> (idf * coef, idf ** 2): a term seen once adds these to the dot and the norm
        self.terms = {
            term: (idf[i] * coef[i], idf[i] * idf[i]) for term, i in vectorizer.vocabulary_.items()
        }
        self.intercept = float(ridge.intercept_)

    def __call__(self, titles: Sequence[str]) -> np.ndarray:
        terms, pattern, out = self.terms, self.pattern, []
        for title in titles:
            words = pattern.findall(title.lower())
            grams = words + [f"{a} {b}" for a, b in pairwise(words)]
            if len(set(grams)) == len(grams):  # every term once (most titles): tf = 1
                found = [terms[g] for g in grams if g in terms]
                dot = sum(f[0] for f in found)
                norm = sum(f[1] for f in found)
            else:  # sublinear tf: (1 + log tf) scales both the weight and its square
                dot = norm = 0.0
                for gram, count in Counter(g for g in grams if g in terms).items():
                    scale = 1.0 + math.log(count)
                    dot += scale * terms[gram][0]
                    norm += scale * scale * terms[gram][1]
            out.append(self.intercept + (dot / math.sqrt(norm) if norm > 0 else 0.0))
        return np.array(out, dtype=np.float64)

    def sklearn_score(self, titles: Sequence[str]) -> np.ndarray:
        """The reference: scikit-learn's own transform and predict."""
        return self.ridge.predict(self.vectorizer.transform(list(titles)))

    @classmethod
    def fit(cls, titles: Sequence[str], y: np.ndarray, alpha: float) -> "TextScore":
        vectorizer = _vectorizer().fit(titles)
        return cls(vectorizer, Ridge(alpha=alpha).fit(vectorizer.transform(titles), y))

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        sio.dump(self.vectorizer, directory / "vectorizer.skops")
        sio.dump(self.ridge, directory / "ridge.skops")
        (directory / "text_score.json").write_text(json.dumps({"alpha": self.ridge.alpha}))

    @classmethod
    def load(cls, directory: Path) -> "TextScore":
        return cls(sio.load(directory / "vectorizer.skops"), sio.load(directory / "ridge.skops"))


def fit_text_score(
    train: tuple[Sequence[str], np.ndarray], valid: tuple[Sequence[str], np.ndarray], seed: int = 0
) -> tuple[TextScore, np.ndarray]:
    """The ridge on all training titles (alpha by validation Spearman) and the training rows'
    cross-fitted scores."""
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
        fold = TextScore.fit(titles[fit_rows], y[fit_rows], model.ridge.alpha)
        crossed[score_rows] = fold(titles[score_rows])
    return model, crossed
