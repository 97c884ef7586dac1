"""What a tracked run is made of, and where runs go: plain Python, no MLflow.

Shared by the command's side (:mod:`upvote.tracking.client`, which never imports MLflow) and the
writer process (:mod:`upvote.tracking.store`, which does).
"""

import math
import os
import resource
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from upvote.settings import Settings


def store_uri(settings: Settings) -> str:
    """Where runs go: the configured URI, else a SQLite file under the data folder."""
    if settings.tracking_uri:
        return settings.tracking_uri
    return f"sqlite:///{settings.mlflow_dir / 'mlflow.db'}"


def artifact_root(settings: Settings, experiment: str = "") -> str | None:
    """Where a new experiment keeps its files, one folder per experiment: the configured root
    (a folder or bucket every machine reaches), else the data folder; a tracking server decides
    for itself. Never MLflow's default, ``./mlruns`` in whatever folder the command ran from."""
    if settings.tracking_artifacts:
        return f"{settings.tracking_artifacts.rstrip('/')}/{experiment}"
    if store_uri(settings).startswith(("http://", "https://", "databricks")):
        return None
    return (settings.mlflow_dir / "artifacts" / experiment).resolve().as_uri()


def flatten(values: Mapping, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1}: MLflow keys are flat."""
    flat: dict[str, object] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def metric_values(values: Mapping) -> dict[str, float]:
    """The finite numbers of a (nested) results dict, as flat metric names."""
    return {
        key: float(value)
        for key, value in flatten(values).items()
        if isinstance(value, int | float) and math.isfinite(value)
    }


def system_metrics() -> dict[str, float]:
    """What this process used, cheap to read at the end (no sampling thread)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "system.peak_rss_mb": own.ru_maxrss / 1024,
        "system.cpu_seconds": own.ru_utime + own.ru_stime,
    }


@dataclass
class RunRecord:
    """One run to write, sent to the writer process as JSON (``to_json`` / ``from_json``)."""

    name: str
    params: dict = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    # name -> [(step, value)]: curves such as the loss per epoch
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[tuple[Path, str | None]] = field(default_factory=list)  # (path, folder)
    start: float = field(default_factory=time.time)  # seconds since the epoch
    end: float | None = None
    failed: bool = False

    def to_json(self) -> dict:
        return asdict(self) | {"artifacts": [[str(p), folder] for p, folder in self.artifacts]}

    @classmethod
    def from_json(cls, data: dict) -> "RunRecord":
        artifacts = [(Path(p), folder) for p, folder in data.get("artifacts", [])]
        return cls(**(data | {"artifacts": artifacts}))


def quiet_environment() -> None:
    """Set before MLflow is imported, unless the user set them: a store over HTTP is retried
    once rather than for minutes, and MLflow's usage telemetry (which reports to MLflow's
    servers) is off."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


class Curve:
    """A word2vec progress callback that samples (words done, loss, words/s) about every
    ``every`` seconds: a loss curve of a few hundred points, whatever the corpus size."""

    def __init__(self, every: float = 0.5) -> None:
        self.every = every
        self.start = self.last = time.perf_counter()
        self.words = 0
        self.points: list[tuple[int, float, float]] = []

    def __call__(self, words: int, loss: float) -> None:
        self.words += words
        now = time.perf_counter()
        if not self.points or now - self.last >= self.every:  # the first one too: short runs
            self.points.append((self.words, loss, self.words / (now - self.start)))
            self.last = now

    def series(self) -> dict[str, list[tuple[int, float]]]:
        return {
            "loss": [(w, loss) for w, loss, _ in self.points],
            "words_per_second": [(w, wps) for w, _, wps in self.points],
        }
