"""`upvote retrain`: pull new stories, train a challenger, compare, promote or keep; record why.

One run, in this order, under an exclusive lock (``<models>/.retrain.lock``):

1. pull the stories added since the last pull (``data.dataset.pull``, incremental for PostgreSQL);
2. unless the champion already knew the newest stories (nothing new: the decision is "kept"),
   train a challenger with the champion's own options (only the data changes) and publish it:
   ``registry.publish`` makes it the ``challenger``, the champion is untouched;
3. score both on the challenger's test window and apply the rule (``compare.py``);
4. promote the challenger if it won: the last step, so a crash anywhere before leaves the champion
   serving; the service follows the ``champion`` link by itself;
5. append the decision to ``<models>/decisions.jsonl`` and log it in MLflow (``upvote-retrain``).

Every step before the promotion writes only new things (a dataset part, a version folder), each
atomically, so a killed retrain leaves at most an unpromoted challenger, and the next one starts
over. The lock is an ``flock``: it dies with its process, so a kill -9 never leaves it stale.
"""

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from upvote.data.dataset import describe_source, load_stories, pull
from upvote.data.files import DataError
from upvote.data.sources import Query
from upvote.model.bundle import ModelNotFoundError, UpvoteModel
from upvote.model.mirror import after_alias_change, track_training
from upvote.model.registry import (
    CHAMPION,
    ChampionChanged,
    alias_target,
    load_model,
    promote,
    registry,
)
from upvote.model.splits import Data, prepare_data
from upvote.model.train import TrainOptions, quick_options, train
from upvote.model.tune import load_params
from upvote.operate import compare
from upvote.operate.options import RetrainOptions
from upvote.redact import redact
from upvote.settings import get_settings
from upvote.tracking.client import Tracking
from upvote.tracking.records import RunRecord, metric_values

LOCK = ".retrain.lock"
DECISIONS = "decisions.jsonl"
EXPERIMENT = "upvote-retrain"
RUN_PARAMS = ("champion", "challenger", "window", "min_gain", "pulled_rows", "rule", "metric",
              "champion_cutoff", "data_snapshot")  # fmt: skip


class RetrainError(RuntimeError):
    """A retrain that could not decide (no champion, a failed pull or training): one line."""


@dataclass
class Decision:
    """What one retrain decided, and on what: one line of ``decisions.jsonl``."""

    decision: str  # "promoted" or "kept"
    reason: str
    champion: str
    challenger: str | None  # None: no challenger trained (nothing new)
    window: dict  # start, end, n: the stories both were scored on
    metrics: dict  # {"champion": {...}, "challenger": {...}}: compare.REPORTED on the window
    sanity: dict  # the challenger's checks (compare.Sanity)
    min_gain: float
    pulled_rows: int | None  # new stories the pull wrote (None: --no-pull)
    champion_cutoff: str | None  # the newest story the champion knew
    data_snapshot: str  # of the challenger's training data
    rule: str = compare.RULE
    metric: str = compare.METRIC
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    seconds: float = 0.0
    mlflow_run: str | None = None

    @property
    def promoted(self) -> bool:
        return self.decision == "promoted"


@contextmanager
def exclusive(models_dir: Path) -> Iterator[None]:
    """Hold ``<models>/.retrain.lock`` (non-blocking) with our pid in it; RetrainError if held."""
    models_dir.mkdir(parents=True, exist_ok=True)
    with open(models_dir / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise RetrainError(f"another retrain is running (pid {holder})") from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        yield  # closing the file (or the process dying) releases the lock


def retrain(options: RetrainOptions | None = None, log: Callable[[str], None] = print) -> Decision:
    """One retrain (see the module docstring); the decision, also recorded. RetrainError when
    no decision could be taken; the champion is then untouched."""
    options = options or RetrainOptions()
    start, started = time.perf_counter(), time.time()
    models = registry()
    with exclusive(models):
        champion_name = alias_target(CHAMPION, models)
        if champion_name is None:
            raise RetrainError(f"no champion in {models} to compare with: run `upvote train`")
        try:
            champion = load_model(champion_name)
        except (ModelNotFoundError, OSError, ValueError) as err:
            raise RetrainError(f"champion {champion_name} cannot be loaded: {err}") from None
        cutoff = champion.metadata.get("data_cutoff")
        log(f"champion: {champion_name} (data until {cutoff})")
        training = _challenger_options(options, champion)
        pulled = _pull(options, log) if options.pull else None
        tracking = Tracking(EXPERIMENT, say=log)  # connects while the challenger trains
        data = _data(training)
        window = compare.Window.of(data.test)
        decision = Decision(
            decision="kept",
            reason="",
            champion=champion_name,
            challenger=None,
            window=asdict(window),
            metrics={},
            sanity={},
            min_gain=options.min_gain,
            pulled_rows=pulled,
            champion_cutoff=cutoff,
            data_snapshot=data.snapshot,
        )
        del data  # training loads its own copy
        unfair = compare.window_is_new(cutoff, window)
        if unfair:  # nothing new to learn from, or nothing fair to compare on: no training
            decision.reason = unfair
        else:
            _challenge(decision, champion, training, log)
        if decision.promoted:
            _promote(decision, champion_name, log)
        decision.seconds = round(time.perf_counter() - start, 1)
        decision.mlflow_run = tracking.log_run(_run(decision, started))
        _append(models / DECISIONS, decision)
    log(f"decision: {decision.decision}: {decision.reason}")
    tracked = f" and MLflow run {decision.mlflow_run}" if decision.mlflow_run else ""
    log(f"recorded in {models / DECISIONS}{tracked}")
    return decision


def _challenger_options(options: RetrainOptions, champion: UpvoteModel) -> TrainOptions:
    """The champion's own training options (only the data changes), or ``options.params``."""
    if options.params is not None:
        try:
            chosen = load_params(options.params)
        except ValueError as err:
            raise RetrainError(f"--params {err}") from None
    else:
        saved = champion.metadata.get("options")
        try:
            chosen = TrainOptions.from_dict(saved)
        except (KeyError, TypeError, AttributeError) as err:
            raise RetrainError(
                f"the champion's metadata.json has no usable training options ({err!r}): "
                "pass --params FILE"
            ) from None
    return quick_options(chosen) if options.quick else chosen


def _pull(options: RetrainOptions, log: Callable[[str], None]) -> int:
    """The incremental pull of ``upvote data pull``; the number of new stories written."""
    settings = get_settings()
    source = options.source or settings.database_url
    if source is None:
        raise RetrainError(
            "no source: pass --source postgresql://... or a file, set DATABASE_URL, or --no-pull"
        )
    log(f"pulling new stories from {redact(source, source)}")
    try:
        result = pull(source, Query(seed=settings.seed), batch_size=options.batch_size)
    except DataError as err:
        raise RetrainError(redact(str(err), source)) from None
    log(f"pulled {result.report.rows_out:,} new stories -> {result.part or 'dataset unchanged'}")
    return result.report.rows_out


def _data(training: TrainOptions) -> Data:
    """The stories and splits the challenger trains and is tested on (as ``train.build``)."""
    try:
        return prepare_data(load_stories(), training.rows, training.max_rows, training.history_rows)
    except (DataError, ValueError) as err:
        raise RetrainError(str(err)) from None


def _challenge(
    decision: Decision, champion: UpvoteModel, training: TrainOptions, log: Callable[[str], None]
) -> None:
    """Train and publish the challenger, score both on the window, apply the rule."""
    challenger_tracking = Tracking("upvote-train", say=log)
    log(
        f"training challenger (its test window: {decision.window['n']} stories from "
        f"{decision.window['start']})"
    )
    started = time.time()
    try:
        bundle, results = train(training, log=log)
    except (ValueError, FileExistsError, DataError) as err:
        raise RetrainError(f"training the challenger failed: {err}") from None
    decision.challenger = bundle.name
    track_training(challenger_tracking, bundle, results, describe_source(), started, say=log)
    data = _data(training)
    if data.snapshot != decision.data_snapshot:
        raise RetrainError("the dataset changed while the challenger trained (a pull?): try again")
    challenger = load_model(bundle.name)  # as saved: what would be served
    window = compare.Window(**decision.window)
    fresh = compare.as_of(challenger, data.history, window.start)
    ours = compare.predictions(challenger, data.test, fresh)
    theirs = compare.predictions(champion, data.test, champion.featurizer)
    decision.metrics = {
        "champion": compare.scores(data.test, theirs),
        "challenger": compare.scores(data.test, ours),
    }
    for who in ("champion", "challenger"):
        shown = ", ".join(f"{k} {v:.4f}" for k, v in decision.metrics[who].items())
        log(f"  {who}: {shown}")
    checks = compare.sanity(ours)
    decision.sanity = asdict(checks) | {"ok": checks.ok}
    metrics = decision.metrics
    wins, why = compare.better(metrics["challenger"], metrics["champion"], decision.min_gain)
    if not checks.ok:
        decision.reason = f"the challenger fails the sanity checks: {', '.join(checks.failed())}"
    else:
        decision.decision, decision.reason = ("promoted" if wins else "kept"), why


def _promote(decision: Decision, champion: str, log: Callable[[str], None]) -> None:
    """Make the challenger the champion unless someone else moved the champion meanwhile
    (checked under the registry's lock, in ``promote``)."""
    try:
        event = promote(
            decision.challenger, reason=f"upvote retrain: {decision.reason}", replacing=champion
        )
    except ChampionChanged as changed:
        decision.decision = "kept"
        decision.reason = f"{changed} (the challenger was compared with {champion}): not promoted"
        return
    log(f"champion: {event['version']} (was {event['previous']})")
    after_alias_change(event, say=log)


def _run(decision: Decision, started: float) -> RunRecord:
    """The MLflow run of a decision: the same fields as its line in ``decisions.jsonl``."""
    record = asdict(decision)
    params = {key: record[key] for key in RUN_PARAMS}
    metrics = metric_values({"window_n": decision.window["n"], "seconds": decision.seconds})
    metrics |= metric_values({**decision.metrics, "sanity": decision.sanity})
    metrics["promoted"] = float(decision.promoted)
    tags = {"upvote.decision": decision.decision, "upvote.reason": decision.reason[:500]}
    return RunRecord(f"retrain {decision.challenger}", params, metrics, tags=tags, start=started)


def _append(path: Path, decision: Decision) -> None:
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(asdict(decision), default=str) + "\n")
        out.flush()
        os.fsync(out.fileno())
