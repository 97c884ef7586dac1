"""A trained model as one folder (a *bundle*) and the registry of bundles.

    <models_dir>/<version>/
        tokenizer/            SentencePiece model
        vectors.npz           our word2vec KeyedVectors (native format)
        regressor.pt          network weights
        model.json            feature + regressor config, quantile and reach calibration
        metadata.json         metrics, data snapshot id, code version, training options
        scores.npy            training stories' scores (for ``percentile``)
        report/               evaluation report (Markdown, HTML, PNG)
    <models_dir>/latest       text file: the newest version name

A bundle is written into a hidden staging folder and renamed into place, and ``latest`` is replaced
with ``os.replace``: a reader (the service) never sees a half-written model.
"""

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from upvote.embeddings import KeyedVectors
from upvote.model.features import FeatureConfig, Featurizer, Stories
from upvote.model.regressor import NumpyRegressor, RegressorConfig, UpvoteNet
from upvote.settings import get_settings
from upvote.tokenizer import SentencePieceTokenizer

OUTPUT_COLUMNS = ("predicted_log1p", "predicted_score", "p10", "p50", "p90", "p_reach_100")


class ModelNotFoundError(LookupError):
    """No such version in the registry (or no model trained yet)."""


class UpvoteModel:
    """Predict HN scores from titles (+ url/time).

    >>> upvote.load_model().predict([{"title": "Show HN: a tiny database"}])
    """

    def __init__(
        self,
        featurizer: Featurizer,
        vectors: KeyedVectors,
        net: UpvoteNet,
        regressor: RegressorConfig,
        quantile_offsets: list[float],
        train_scores: np.ndarray,
        metadata: dict | None = None,
        reach_offset: float = 0.0,
        version: str = "unsaved",
    ) -> None:
        self.featurizer = featurizer
        self.vectors = vectors
        self.net = net  # torch: kept for saving (and further training)
        self.forward = NumpyRegressor.from_net(net)  # numpy: every prediction goes through it
        self.regressor = regressor
        self.quantile_offsets = np.asarray(quantile_offsets, dtype=np.float32)
        self.reach_offset = float(reach_offset)
        self.train_scores = np.sort(np.asarray(train_scores, dtype=np.float64))
        self.metadata = metadata or {}
        self.version = version

    # -- prediction -------------------------------------------------------------------------
    def predict_log(self, stories: Stories) -> np.ndarray:
        """[N, 5]: mean, calibrated q10/q50/q90 (log1p scale, sorted), P(score >= reach)."""
        raw = self.forward(self.featurizer.transform(stories, selection="unfiltered"))
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

        The service's hot path: the same features and network as ``predict``, minus the >1 ms
        of building DataFrames around a sub-millisecond model call.
        """
        return [
            dict(zip(OUTPUT_COLUMNS, row, strict=True)) for row in self._outputs(stories).tolist()
        ]

    def explain(self, title: str) -> list[tuple[str, float]]:
        """Per piece: predicted log1p(score) minus the prediction with that piece's vector masked.

        Positive = the piece pushes the prediction up. Pieces without a vector contribute 0.
        """
        pieces = self.featurizer.tokenizer.tokenize(title)
        x = self.featurizer.transform([{"title": title}], selection="unfiltered")
        width = x.tokens.shape[1]
        n = min(len(pieces), width)
        rows = np.zeros(n + 1, dtype=np.int64)
        variants = x.take(rows)
        variants.tokens = variants.tokens.copy()
        for j in range(n):
            variants.tokens[j + 1, j] = -1
        pred = self.forward(variants)[:, 0]
        contributions = [float(pred[0] - pred[j + 1]) for j in range(n)]
        return list(zip(pieces, contributions + [0.0] * (len(pieces) - n), strict=True))

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
        self.vectors.save(directory / "vectors.npz")
        torch.save(self.net.state_dict(), directory / "regressor.pt")
        config = {
            "features": self.featurizer.config.to_dict(),
            "regressor": self.regressor.to_dict(),
            "quantile_offsets": self.quantile_offsets.tolist(),
            "reach_offset": self.reach_offset,
        }
        (directory / "model.json").write_text(json.dumps(config, indent=2))
        (directory / "metadata.json").write_text(json.dumps(self.metadata, indent=2, default=str))
        np.save(directory / "scores.npy", self.train_scores)
        return directory

    @classmethod
    def load(cls, directory: str | Path, version: str | None = None) -> "UpvoteModel":
        directory = Path(directory)
        config = json.loads((directory / "model.json").read_text())
        features = FeatureConfig(**config["features"])
        regressor = RegressorConfig.from_dict(config["regressor"])
        tokenizer = SentencePieceTokenizer.load(directory / "tokenizer")
        vectors = KeyedVectors.load(directory / "vectors.npz")
        net = UpvoteNet(vectors.vectors, features, regressor)
        net.load_state_dict(torch.load(directory / "regressor.pt", weights_only=True))
        return cls(
            Featurizer(tokenizer, vectors.key_to_index, features),
            vectors,
            net,
            regressor,
            config["quantile_offsets"],
            np.load(directory / "scores.npy"),
            metadata=json.loads((directory / "metadata.json").read_text()),
            version=version or directory.name,
            reach_offset=config.get("reach_offset", 0.0),
        )


# -- registry -------------------------------------------------------------------------------
def registry(registry_dir: str | Path | None = None) -> Path:
    return Path(registry_dir) if registry_dir else get_settings().models_dir


def list_versions(registry_dir: str | Path | None = None) -> list[str]:
    root = registry(registry_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "model.json").is_file())


def resolve_version(version: str = "latest", registry_dir: str | Path | None = None) -> Path:
    """The bundle folder of ``version`` ("latest" follows the ``latest`` file)."""
    root = registry(registry_dir)
    if version == "latest":
        pointer = root / "latest"
        if not pointer.is_file():
            raise ModelNotFoundError(f"no model trained yet in {root}: run `upvote train` first")
        version = pointer.read_text().strip()
    directory = root / version
    if not version or "/" in version or version.startswith(".") or not directory.is_dir():
        known = ", ".join(list_versions(root)) or "none"
        raise ModelNotFoundError(f"unknown model version {version!r} in {root} (known: {known})")
    return directory


def load_model(version: str = "latest", registry_dir: str | Path | None = None) -> UpvoteModel:
    """Load a bundle from the registry: the newest by default."""
    directory = resolve_version(version, registry_dir)
    return UpvoteModel.load(directory, version=directory.name)


def publish(
    model: UpvoteModel,
    version: str,
    registry_dir: str | Path | None = None,
    extra: dict[str, Path] | None = None,
) -> Path:
    """Write ``model`` (+ ``extra`` folders: the report) as ``version``; point latest at it."""
    root = registry(registry_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    if final.exists():
        raise FileExistsError(f"model version {version} already exists in {root}")
    staging = root / f".staging-{version}-{os.getpid()}"
    try:
        model.version = version
        model.save(staging)
        for name, source in (extra or {}).items():
            shutil.copytree(source, staging / name)
        os.rename(staging, final)  # atomic on one file system
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    pointer = root / f".latest-{os.getpid()}"
    pointer.write_text(version + "\n")
    os.replace(pointer, root / "latest")
    return final
