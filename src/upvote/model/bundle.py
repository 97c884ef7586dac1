"""A trained model as one folder (a *bundle*): its files, how it is written and read.

    <models_dir>/<version>/
        tokenizer/            SentencePiece model
        history/              domain and author track records frozen at the data cutoff
        text_score/           TF-IDF + ridge of the title's words (its terms' weights), an input
        baseline/             the fitted model instead of regressor.npz for `--model ridge|gbm`
        vectors.npz           our word2vec KeyedVectors (native format)
        regressor.npz         network weights, as numpy arrays (inference.py)
        model.json            feature + regressor config, quantile and reach calibration
        metadata.json         metrics, data snapshot id, code version, training options
        scores.npy            training stories' scores (for ``percentile``)
        profile.json          reference profile of the data, for drift monitoring (profile.py);
                              absent in bundles made before it: they load, without drift
        report/               evaluation report (Markdown, HTML, PNG)

The folder is the whole model: the registry (``registry.py``: versions, the ``latest``,
``champion`` and ``challenger`` links, promotions) only names and points at such folders. Loading
a bundle of the default kind imports neither torch nor scikit-learn (the service's memory and
start-up).
"""

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from upvote.data.schema import UNFILTERED
from upvote.embeddings.vectors import KeyedVectors
from upvote.model.features import FeatureConfig, Features, Featurizer, Stories
from upvote.model.history import HistoryStore
from upvote.model.inference import NumpyRegressor, RegressorConfig
from upvote.model.metadata import (
    FORM_NAMES,
    author_key,
    domain_key,
    text,
    title_form,
    utc_times,
)
from upvote.model.profile import Profile
from upvote.model.text_score import TextScore
from upvote.tokenizer.sentencepiece import SentencePieceTokenizer

if TYPE_CHECKING:
    from upvote.model.baselines import PointModel

FORMAT = 2  # of the bundle's files; 2: numpy weights (regressor.npz, text_score/terms.npz)
OUTPUT_COLUMNS = ("predicted_log1p", "predicted_score", "p10", "p50", "p90", "p_reach_100")


class ModelNotFoundError(LookupError):
    """No such version in the registry (or no model trained yet)."""


# The dense features each explanation factor sets to its training average (features.py's names).
FACTOR_GROUPS = {
    "domain history": ("url_unknown", "no_url", "domain_count", "domain_lift"),
    "author history": ("author_known", "author_count", "author_lift"),
    "time": ("era", "time_unknown"),
    "title form": (*FORM_NAMES, "pieces"),
}


def group_pieces(pieces: list[str]) -> list[tuple[str, list[int]]]:
    """SentencePiece pieces -> whole words with the positions of their pieces (``▁`` starts a
    word), so that explanations speak in words, not sub-word pieces."""
    words: list[tuple[str, list[int]]] = []
    for i, piece in enumerate(pieces):
        if piece.startswith("\u2581") or not words:
            words.append((piece.removeprefix("\u2581"), [i]))
        else:
            words[-1] = (words[-1][0] + piece, [*words[-1][1], i])
    return [(w, p) for w, p in words if w.strip()]


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)  # no overflow for a very negative z
    return e / (1.0 + e)


class UpvoteModel:
    """Predict HN scores from a story's title, url, author and time.

    >>> upvote.load_model().predict([{"title": "Show HN: a tiny database"}])

    ``model`` is the fitted predictor: the default Wide & Deep network (kind "mlp") as a
    ``NumpyRegressor``, or one of ``baselines.py``'s ("ridge", "gbm"); all give the same five
    outputs and are called the same way (``forward``).
    """

    def __init__(
        self,
        featurizer: Featurizer,
        vectors: KeyedVectors,
        model: "NumpyRegressor | PointModel",
        regressor: RegressorConfig,
        quantile_offsets: list[float],
        train_scores: np.ndarray,
        metadata: dict | None = None,
        reach_offset: float = 0.0,
        version: str = "unsaved",
        dense_mean: np.ndarray | None = None,
        profile: Profile | None = None,
    ) -> None:
        self.featurizer = featurizer
        self.vectors = vectors
        self.forward = model  # every prediction goes through it
        self.kind = "mlp" if isinstance(model, NumpyRegressor) else model.kind
        self.regressor = regressor
        self.quantile_offsets = np.asarray(quantile_offsets, dtype=np.float32)
        self.reach_offset = float(reach_offset)
        self.train_scores = np.sort(np.asarray(train_scores, dtype=np.float64))
        self.metadata = metadata or {}
        self.version = version
        n_dense = featurizer.config.n_dense
        # the training rows' mean dense features: "no effect" in explanations
        self.dense_mean = np.zeros(n_dense) if dense_mean is None else np.asarray(dense_mean)
        self.profile = profile  # the reference of drift monitoring; None in older bundles

    # -- prediction -------------------------------------------------------------------------
    def predict_log(self, stories: Stories) -> np.ndarray:
        """[N, 5]: mean, calibrated q10/q50/q90 (log1p scale, sorted), P(score >= reach)."""
        return self.predict_log_features(self.featurizer.transform(stories, selection=UNFILTERED))

    def predict_log_features(self, x: Features) -> np.ndarray:
        """``predict_log`` of featurized stories (evaluation featurizes each split itself)."""
        raw = self.forward(x)
        quantiles = np.sort(raw[:, 1:4] + self.quantile_offsets, axis=1)
        reach = 1.0 / (1.0 + np.exp(-(raw[:, 4] + self.reach_offset)))
        return np.column_stack([raw[:, 0], quantiles, reach])

    def _outputs(self, stories: Stories) -> np.ndarray:
        """[N, 6] in the order of ``OUTPUT_COLUMNS``: scores are >= 0."""
        out = self.predict_log(stories)
        return np.column_stack([out[:, 0], np.expm1(np.maximum(out[:, :4], 0.0)), out[:, 4]])

    def predict(self, stories: Stories) -> pd.DataFrame:
        """One row per story: predicted_log1p, predicted_score, p10, p50, p90, p_reach_100.

        ``stories``: a DataFrame (keeps its index) or a list of dicts, each with a ``title`` and
        optionally ``url``, ``by``, ``time``.
        """
        index = stories.index if isinstance(stories, pd.DataFrame) else None
        return pd.DataFrame(self._outputs(stories), columns=list(OUTPUT_COLUMNS), index=index)

    def predict_records(self, stories: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
        """``predict`` for a few stories without pandas: one dict of ``OUTPUT_COLUMNS`` each.

        The service's hot path: the same features and network as ``predict``; the calibration
        of ``predict_log_features`` is repeated here on Python floats, which for a few stories
        costs less than the dozen numpy calls around it (a test checks both ways agree).
        """
        raw = self.forward(self.featurizer.transform(stories, selection=UNFILTERED)).tolist()
        o10, o50, o90 = self.quantile_offsets.tolist()
        reach_offset, expm1 = self.reach_offset, math.expm1
        out = []
        for mean, q10, q50, q90, logit in raw:
            p10, p50, p90 = sorted((q10 + o10, q50 + o50, q90 + o90))
            # expm1(max(q, 0.0)) written out; "not q <= 0" keeps a NaN a NaN, as max does
            values = (
                mean,
                expm1(mean) if not mean <= 0 else 0.0,
                expm1(p10) if not p10 <= 0 else 0.0,
                expm1(p50) if not p50 <= 0 else 0.0,
                expm1(p90) if not p90 <= 0 else 0.0,
                _sigmoid(logit + reach_offset),
            )
            out.append(dict(zip(OUTPUT_COLUMNS, values, strict=True)))
        return out

    def explain(self, story: str | Mapping[str, Any]) -> dict[str, list[tuple[str, float]]]:
        """What moved the prediction of log1p(score), in two lists of (name, contribution):

        - ``words``: each whole word of the title (among the first ``max_tokens`` pieces, the
          ones the model reads): the prediction minus the prediction without that word;
        - ``factors``: the domain's and author's track record, the time, the title's form: the
          prediction minus the prediction with that group of features at its training average
          (so "no effect" is 0).

        Positive = pushes the prediction up. Works the same for every kind of model.
        """
        story = {"title": story} if isinstance(story, str) else dict(story)
        title = text(story.get("title"))
        limit = self.featurizer.config.max_tokens
        words = [w for w, _ in group_pieces(self.featurizer.tokenizer.tokenize(title)[:limit])]
        variants = [story]
        for i in range(len(words)):
            variants.append({**story, "title": " ".join(words[:i] + words[i + 1 :])})
        x = self.featurizer.transform(variants, selection=UNFILTERED)
        names = self.featurizer.config.dense_names
        groups = [g for g, cols in FACTOR_GROUPS.items() if set(cols) & set(names)]
        base = x.take(np.zeros(len(groups), dtype=np.int64))
        base.dense = base.dense.copy()
        for i, group in enumerate(groups):
            columns = [names.index(n) for n in FACTOR_GROUPS[group] if n in names]
            base.dense[i, columns] = self.dense_mean[columns]
        pred = self.forward(x)[:, 0]
        without = self.forward(base)[:, 0] if groups else np.zeros(0)
        return {
            "words": [(w, float(pred[0] - pred[i])) for i, w in enumerate(words, start=1)],
            "factors": [(g, float(pred[0] - without[i])) for i, g in enumerate(groups)],
        }

    def describe(self, story: Mapping[str, Any]) -> dict[str, str]:
        """Per explanation factor, in words, what the model knows of this story's context."""
        out = {}
        history = self.featurizer.history
        if history is not None:
            for factor, kind, key, thing in (
                ("domain history", "domain", domain_key(story.get("url")), "domain"),
                ("author history", "author", author_key(story.get("by")), "author"),
            ):
                table = history.tables[kind]
                row = table.keys.get(key)
                if not key:
                    missing_url = kind == "domain" and "url" in story
                    out[factor] = "no url (a text post)" if missing_url else f"{thing} not given"
                elif row is None:
                    out[factor] = f"{key}: no earlier story known"
                else:
                    count, total = table.counts[row], table.sums[row]
                    out[factor] = (
                        f"{key}: {count:.0f} earlier stories, typical score "
                        f"{np.expm1(total / count):.0f} (until {history.cutoff[:10]})"
                    )
        when = utc_times([story.get("time")])[0]
        out["time"] = (
            "time not given" if np.isnat(when) else f"{str(when)[:16].replace('T', ' ')} UTC"
        )
        form = title_form(text(story.get("title")))
        prefixes = [
            n.replace("_hn", " HN").title().replace("Hn", "HN")
            for n, v in zip(FORM_NAMES[:4], form[:4], strict=True)
            if v
        ]
        out["title form"] = ", ".join([*prefixes, f"{len(text(story.get('title')))} characters"])
        return out

    def percentile(self, score: float) -> float:
        """Percent of the training stories (an unbiased sample of HN) scoring below ``score``."""
        below = np.searchsorted(self.train_scores, score, side="left")
        equal = np.searchsorted(self.train_scores, score, side="right") - below
        return float(100.0 * (below + 0.5 * equal) / max(len(self.train_scores), 1))

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.featurizer.tokenizer.save(directory / "tokenizer")
        if self.featurizer.history is not None:
            self.featurizer.history.save(directory / "history")
        if self.featurizer.text_score is not None:
            self.featurizer.text_score.save(directory / "text_score")
        self.vectors.save(directory / "vectors.npz")
        if isinstance(self.forward, NumpyRegressor):
            self.forward.save(directory / "regressor.npz")
        else:
            self.forward.save(directory / "baseline")
        config = {
            "format": FORMAT,
            "kind": self.kind,
            "features": self.featurizer.config.to_dict(),
            "regressor": self.regressor.to_dict(),
            "quantile_offsets": self.quantile_offsets.tolist(),
            "reach_offset": self.reach_offset,
            "dense_mean": [float(v) for v in self.dense_mean],
        }
        (directory / "model.json").write_text(json.dumps(config, indent=2))
        (directory / "metadata.json").write_text(json.dumps(self.metadata, indent=2, default=str))
        np.save(directory / "scores.npy", self.train_scores)
        if self.profile is not None:
            (directory / "profile.json").write_text(self.profile.to_json())
        return directory

    @classmethod
    def load(cls, directory: str | Path, version: str | None = None) -> "UpvoteModel":
        directory = Path(directory)
        config = json.loads((directory / "model.json").read_text())
        if config.get("format", 1) != FORMAT:
            raise ModelNotFoundError(
                f"model {directory.name} was saved by an older upvote (bundle format "
                f"{config.get('format', 1)}, this one reads {FORMAT}): retrain with `upvote train`"
            )
        features = FeatureConfig.from_dict(config["features"])
        regressor = RegressorConfig.from_dict(config["regressor"])
        tokenizer = SentencePieceTokenizer.load(directory / "tokenizer")
        vectors = KeyedVectors.load(directory / "vectors.npz")
        history = None
        if (directory / "history").is_dir():
            history = HistoryStore.load(directory / "history")
        text_score = None
        if (directory / "text_score").is_dir():
            text_score = TextScore.load(directory / "text_score")
        if config.get("kind", "mlp") == "mlp":
            model = NumpyRegressor.load(directory / "regressor.npz")
        else:  # scikit-learn is imported only for these kinds
            from upvote.model.baselines import load_baseline

            model = load_baseline(directory / "baseline")
        profile = None
        if (directory / "profile.json").is_file():
            profile = Profile.from_json((directory / "profile.json").read_text())
        return cls(
            Featurizer(tokenizer, vectors.key_to_index, features, history, text_score),
            vectors,
            model,
            regressor,
            config["quantile_offsets"],
            np.load(directory / "scores.npy"),
            metadata=json.loads((directory / "metadata.json").read_text()),
            version=version or directory.name,
            reach_offset=config.get("reach_offset", 0.0),
            dense_mean=config.get("dense_mean"),
            profile=profile,
        )
