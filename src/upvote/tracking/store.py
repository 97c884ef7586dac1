"""The MLflow side of tracking, run in its own process: ``python -m upvote.tracking.store``.

MLflow takes ~2 s of CPU to import (more to create a fresh SQLite store); in the command's own
process that import would hold the interpreter lock while training runs. So the command starts
this writer at its beginning (:class:`upvote.tracking.client.Tracking`); it imports MLflow and
opens the store on the other core while the command works, then does what it is asked, one JSON
line per request on stdin, one answer per line on the protocol pipe:

    {"op": "open_run" | "finish_run" | "mirror_version" | "mirror_aliases", "args": [...]}
    -> {"ok": value} or {"error": "TypeName: message"}

The first line it writes says whether the store answered: {"ok": experiment_id} or an error.
It ends when its stdin closes (the command ended, or died).

Runs are written with ``MlflowClient`` and explicit run ids, not ``mlflow.start_run``: no
"active run" state, and every metric of a run goes in a few ``log_batch`` calls (a per-epoch
``log_metric`` would be one database commit per value).

The registry mirror: every published bundle becomes a version of the registered model
``upvote`` (source: the bundle folder; tags: its name and headline metrics), and MLflow's
aliases are made equal to the folder's (model/registry.py is the source of truth; see
docs/experiments.md). Each alias call copies the whole state, so a failed mirror is repaired by
the next one.
"""

import fcntl
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from upvote.tracking.records import RunRecord, flatten

MAX_PARAM_CHARS = 6000  # MLflow's limit on a parameter's value
BATCH_PARAMS, BATCH_METRICS = 100, 1000  # MLflow's limits per log_batch call
KEY = re.compile(r"[^\w./ :-]")  # characters MLflow refuses in a key
MODEL_NAME = "upvote"  # the registered model every bundle is a version of
VERSION_TAG = "upvote.version"  # the bundle's name on each MLflow model version
CONNECT_SECONDS = 10  # a database server store that has not answered by then is unreachable
CONNECT_TIMEOUT_ARG = {"postgresql": "connect_timeout", "mysql": "connect_timeout"}  # by dialect


class Store:
    """One MLflow experiment of one tracking store, written to directly."""

    def __init__(self, uri: str, experiment: str, artifact_location: str | None) -> None:
        from mlflow import MlflowClient

        for name in ("mlflow", "alembic"):  # table creation at INFO: a server's log, not ours
            logging.getLogger(name).setLevel(logging.WARNING)
        _reachable(uri)
        with _creating(uri):
            self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            found = self.client.get_experiment_by_name(experiment)
            if found is not None:
                self.experiment_id = found.experiment_id
            else:
                self.experiment_id = self.client.create_experiment(
                    experiment, artifact_location=artifact_location
                )

    def open_run(self, record: dict, parent: str | None = None) -> str:
        from mlflow.entities import Param

        run = RunRecord.from_json(record)
        tags = dict(run.tags) | ({"mlflow.parentRunId": parent} if parent else {})
        created = self.client.create_run(
            self.experiment_id, start_time=int(run.start * 1000), tags=tags, run_name=run.name
        )
        run_id = created.info.run_id
        params = [Param(_key(k), _param_value(v)) for k, v in flatten(run.params).items()]
        for chunk in _chunks(params, BATCH_PARAMS):
            self.client.log_batch(run_id, params=chunk)
        return run_id

    def finish_run(self, run_id: str, record: dict) -> bool:
        from mlflow.entities import Metric

        run, now = RunRecord.from_json(record), int(time.time() * 1000)
        metrics = [Metric(_key(k), v, now, 0) for k, v in run.metrics.items()]
        for name, points in run.series.items():
            metrics += [
                Metric(_key(name), float(v), now, int(step))
                for step, v in points
                if math.isfinite(v)
            ]
        for chunk in _chunks(metrics, BATCH_METRICS):
            self.client.log_batch(run_id, metrics=chunk)
        for path, folder in run.artifacts:
            if path.is_dir():
                self.client.log_artifacts(run_id, str(path), folder)
            elif path.is_file():
                self.client.log_artifact(run_id, str(path), folder)
        status = "FAILED" if run.failed else "FINISHED"
        end = int((run.end or time.time()) * 1000)
        self.client.set_terminated(run_id, status=status, end_time=end)
        return True

    def mirror_version(self, bundle: str, run_id: str | None, metrics: dict) -> str:
        """Register the bundle folder as a version of ``upvote`` (once); its version number."""
        folder = Path(bundle)
        known = self._versions()
        if folder.name in known:
            return known[folder.name]
        if not self.client.search_registered_models(f"name = '{MODEL_NAME}'"):
            self.client.create_registered_model(
                MODEL_NAME, description="HN upvote model; bundles are in UPVOTE_DATA_DIR/models"
            )
        tags = {VERSION_TAG: folder.name} | {k: f"{v:.4f}" for k, v in metrics.items()}
        source = folder.resolve().as_uri()
        created = self.client.create_model_version(MODEL_NAME, source, run_id=run_id, tags=tags)
        return str(created.version)

    def mirror_aliases(self, aliases: dict[str, str]) -> bool:
        """Make MLflow's aliases of ``upvote`` equal ``aliases`` (alias -> bundle name); an
        alias absent there is removed. True when every bundle named is mirrored."""
        known = self._versions()
        current = dict(self.client.get_registered_model(MODEL_NAME).aliases) if known else {}
        for alias, bundle in aliases.items():
            number = known.get(bundle)
            if number is not None and str(current.get(alias)) != number:
                self.client.set_registered_model_alias(MODEL_NAME, alias, number)
        for alias in set(current) - set(aliases):
            self.client.delete_registered_model_alias(MODEL_NAME, alias)
        return all(name in known for name in aliases.values())

    def _versions(self) -> dict[str, str]:
        """bundle name -> MLflow version number of every mirrored bundle."""
        found = self.client.search_model_versions(f"name = '{MODEL_NAME}'")
        return {v.tags[VERSION_TAG]: str(v.version) for v in found if VERSION_TAG in v.tags}


@contextmanager
def _creating(uri: str) -> Iterator[None]:
    """One writer at a time opens a SQLite store: the first creates its tables (MLflow's
    migrations), and two doing it at once collide (`upvote retrain` opens two experiments at
    its start). A database server serializes this itself."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    database = Path(uri.removeprefix("sqlite:///"))
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _reachable(uri: str) -> None:
    """Raise at once when a database server store does not answer: MLflow retries the first
    connection for ~100 s (``create_sqlalchemy_engine_with_retry``), and a command waits for
    the store's first answer before it says "tracking off" and goes on."""
    dialect = uri.partition("://")[0].partition("+")[0]
    if dialect not in CONNECT_TIMEOUT_ARG:
        return  # a file, SQLite, an HTTP tracking server (its own timeouts)
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(
        uri, poolclass=NullPool, connect_args={CONNECT_TIMEOUT_ARG[dialect]: CONNECT_SECONDS}
    )
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def _key(name: str) -> str:
    return KEY.sub("_", name)[:250]


def _param_value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:MAX_PARAM_CHARS]


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _error(error: BaseException) -> dict:
    lines = str(error).strip().splitlines() or [""]
    return {"error": f"{type(error).__name__}: {lines[0][:300]}".rstrip(": ")}


def main() -> None:
    """Serve one command: argv = uri, experiment, artifact location ("" for the store's own)."""
    uri, experiment, location = sys.argv[1:4]
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # anything MLflow prints must not mix with the answers

    def answer(message: dict) -> None:
        answers.write(json.dumps(message, default=str) + "\n")

    try:
        store = Store(uri, experiment, location or None)
    except ImportError:
        answer({"error": "MLflow is not installed (pip install 'upvote[mlops]')"})
        return
    except Exception as error:
        answer(_error(error))
        return
    answer({"ok": store.experiment_id})
    operations = {
        "open_run": store.open_run,
        "finish_run": store.finish_run,
        "mirror_version": store.mirror_version,
        "mirror_aliases": store.mirror_aliases,
    }
    for line in sys.stdin:
        try:
            request = json.loads(line)
            answer({"ok": operations[request["op"]](*request["args"])})
        except Exception as error:
            answer(_error(error))


if __name__ == "__main__":
    main()
