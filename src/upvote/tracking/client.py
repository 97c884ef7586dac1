"""A connection to an MLflow tracking store that never stands in training's way.

MLflow takes ~2 s to import and ~2 s more to create a fresh SQLite store, which is more than the
5% of a default `upvote train` that tracking may cost. So :class:`Tracking` connects in a
background thread while the command works, and the command logs its runs at the end, in a few
batched calls (a per-epoch ``log_metric`` would be one database commit per value). A store over
HTTP is retried once, not for minutes, and MLflow's telemetry is off (``quiet_environment``).

Runs are written with ``MlflowClient`` and explicit run ids, not ``mlflow.start_run``: no global
"active run", so a run cannot leak into another thread (the tuner runs trials in threads).

When tracking is off (``UPVOTE_TRACKING=0``) or the store cannot be reached, every call is a
no-op and the command says so once; the store's URL is printed with its password masked.
"""

import json
import math
import os
import re
import resource
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from upvote.redact import redact
from upvote.settings import Settings, get_settings

CONNECT_TIMEOUT = 60.0  # seconds a command waits, at its end, for the store to answer
MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter's value
BATCH_PARAMS, BATCH_METRICS = 100, 1000  # MLflow's limits per log_batch call
_KEY = re.compile(r"[^\w./ :-]")  # characters MLflow refuses in a key


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
    """One run to write: everything is sent in a few batches by :meth:`Tracking.log_run`."""

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


class Tracking:
    """MLflow for one command: connects in the background at construction, logs at the end.

    ``experiment``: the MLflow experiment's name (created when missing).
    ``say``: how to tell the user (one line) that tracking is off or what was logged.
    """

    def __init__(
        self,
        experiment: str,
        settings: Settings | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.settings = settings or get_settings()
        self.experiment, self.say = experiment, say
        self.uri = store_uri(self.settings)
        self.client = None
        self.experiment_id: str | None = None
        self._error: str | None = None
        self._said = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        if not self.settings.tracking:
            self._error = "UPVOTE_TRACKING=0"
            return
        quiet_environment()
        self._thread = threading.Thread(target=self._connect, name="mlflow-connect", daemon=True)
        self._thread.start()

    @property
    def where(self) -> str:
        return redact(self.uri, self.uri)

    def _connect(self) -> None:
        try:
            from mlflow import MlflowClient  # ~2 s: paid here, beside the command's work

            _quiet_mlflow()

            if self.uri.startswith("sqlite:///"):
                Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
            found = client.get_experiment_by_name(self.experiment)
            if found is not None:
                self.experiment_id = found.experiment_id
            else:
                self.experiment_id = client.create_experiment(
                    self.experiment, artifact_location=artifact_root(self.settings, self.experiment)
                )
            self.client = client
        except ImportError:
            self._error = "MLflow is not installed (pip install 'upvote[mlops]')"
        except Exception as error:  # any store problem: tracking is off, training goes on
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            message = redact(f"{type(error).__name__}: {first_line[:300]}", self.uri)
            self._error = f"MLflow store {self.where} failed ({message})"

    def ready(self) -> bool:
        """True when runs can be logged; otherwise says why, once."""
        if self._thread is not None:
            self._thread.join(CONNECT_TIMEOUT)
            if self._thread.is_alive():
                self._error = f"MLflow store {self.where}: no answer in {CONNECT_TIMEOUT:g} s"
        if self.client is not None and self._error is None:
            return True
        if not self._said:
            self._said = True
            self.say(f"tracking off: {self._error}")
        return False

    def log_run(self, record: RunRecord, parent: str | None = None) -> str | None:
        """Write ``record`` as a finished run (nested under run id ``parent``); its id, or None
        when tracking is off or the store failed (said once)."""
        run_id = self.open_run(record, parent)
        if run_id is None or not self.finish_run(run_id, record):
            return None
        return run_id

    def open_run(self, record: RunRecord, parent: str | None = None) -> str | None:
        """Create a running run with ``record``'s name, tags and parameters (a parent whose
        children are logged while it runs, such as a tuning study); its id or None."""
        return self._guarded(self._open, record, parent)

    def finish_run(self, run_id: str, record: RunRecord) -> bool:
        """Add ``record``'s metrics, curves and artifacts to run ``run_id`` and end it."""
        return self._guarded(self._finish, run_id, record) is not None

    def _guarded(self, write: Callable, *args):
        if not self.ready():
            return None
        try:
            with self._lock:  # trials end in several threads; one writer at a time
                return write(*args)
        except Exception as error:  # the store went away: say so once, training goes on
            message = f"{type(error).__name__}: {str(error)[:300]}"
            self._error = f"MLflow store {self.where} failed ({redact(message, self.uri)})"
            self.client, self._said = None, False
            self.ready()
            return None

    def _open(self, record: RunRecord, parent: str | None) -> str:
        from mlflow.entities import Param

        tags = dict(record.tags)
        if parent:
            tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(
            self.experiment_id, start_time=int(record.start * 1000), tags=tags, run_name=record.name
        )
        run_id = run.info.run_id
        params = [Param(_key(k), _param_value(v)) for k, v in flatten(record.params).items()]
        for chunk in _chunks(params, BATCH_PARAMS):
            self.client.log_batch(run_id, params=chunk)
        return run_id

    def _finish(self, run_id: str, record: RunRecord) -> bool:
        from mlflow.entities import Metric

        client = self.client
        now = int(time.time() * 1000)
        metrics = [Metric(_key(k), v, now, 0) for k, v in record.metrics.items()]
        for name, points in record.series.items():
            metrics += [
                Metric(_key(name), float(v), now, int(step))
                for step, v in points
                if math.isfinite(v)
            ]
        for chunk in _chunks(metrics, BATCH_METRICS):
            client.log_batch(run_id, metrics=chunk)
        for path, folder in record.artifacts:
            if path.is_dir():
                client.log_artifacts(run_id, str(path), folder)
            elif path.is_file():
                client.log_artifact(run_id, str(path), folder)
        end = record.end or time.time()
        status = "FAILED" if record.failed else "FINISHED"
        client.set_terminated(run_id, status=status, end_time=int(end * 1000))
        return True


def _key(name: str) -> str:
    return _KEY.sub("_", name)[:250]


def _param_value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM_CHARS]


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def quiet_environment() -> None:
    """Set before MLflow is imported, unless the user set them: a store over HTTP is retried
    once rather than for minutes, and MLflow's usage telemetry (which reports to MLflow's
    servers, and on a machine without internet waits for timeouts at exit) is off."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def _quiet_mlflow() -> None:
    """MLflow and alembic announce every table they create at INFO (MLflow sets its loggers up
    when imported, so this runs after): that is for a server's log, not a training command's."""
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
