"""What each command records in MLflow, built from what the command already writes.

`upvote train`: a run per training with every option, the data snapshot, the code version and
git commit as parameters; the regressor's loss curves per epoch, validation and test metrics of
ours and of every baseline, the time of each step and the process's peak memory as metrics; the
report and the bundle's metadata as artifacts, and a tag linking the bundle folder. The embedding
stage (tokenizer + word2vec) is a nested run inside it.

`upvote embed train`: a run with the word2vec options, the loss and words/s along the training
(sampled by :class:`Curve`), the corpus size and the time of each phase.
"""

import time
from pathlib import Path

from upvote.tracking.client import Tracking
from upvote.tracking.records import Curve, RunRecord, metric_values, system_metrics


def git_commit(code_version: str) -> str:
    """ "0.4.0+1f1055d" -> "1f1055d" ("" outside a git checkout)."""
    return code_version.partition("+")[2]


def training_runs(
    metadata: dict, results: dict, bundle: Path, source: str, start: float
) -> tuple[RunRecord, RunRecord]:
    """(the train run, its nested embedding run) of one `upvote train`, from the bundle's
    ``metadata.json`` and the evaluation's results."""
    options = metadata.get("options", {})
    timings = metadata.get("timings", {})
    code = metadata.get("code_version", "")
    tags = {
        "upvote.version": metadata.get("version", bundle.name),
        "upvote.bundle": str(bundle.resolve()),
        "upvote.dataset": source,
        "upvote.data_snapshot": str(metadata.get("data_snapshot", "")),
        "upvote.rows": str(options.get("rows", "")),
        "upvote.model": str(options.get("model", "")),
        "mlflow.source.git.commit": git_commit(code),
    }
    params = {k: v for k, v in options.items() if k not in ("word2vec",)}
    params |= {
        "data_snapshot": metadata.get("data_snapshot"),
        "data_cutoff": metadata.get("data_cutoff"),
        "code_version": code,
        "git_commit": git_commit(code),
    }
    metrics: dict[str, float] = {}
    for name, scored in results.items():
        if isinstance(scored, dict) and "spearman" in scored:  # ours, baselines, ablations
            metrics |= metric_values({f"test.{name}": scored})
    metrics |= metric_values({"validation": results.get("validation", {})})
    metrics |= metric_values({"coverage": results.get("coverage", {}).get("calibrated", {})})
    metrics |= metric_values({"reach": results.get("reach", {})})
    metrics |= metric_values({"rows": metadata.get("rows", {})})
    metrics |= metric_values({"seconds": timings})
    metrics |= {"best_epoch": float(metadata.get("best_epoch", 0))}
    metrics |= {k: float(v) for k, v in results.items() if isinstance(v, bool)}
    metrics |= system_metrics()
    history = metadata.get("history", [])
    series = {
        f"epoch.{key}": [(row["epoch"], row[key]) for row in history if key in row]
        for key in ("train_loss", "train_mse", "valid_mse")
    }
    run = RunRecord(
        name=f"train {bundle.name}",
        params=params,
        metrics=metrics,
        series=series,
        tags=tags,
        artifacts=[(bundle / "report", "report"), (bundle / "metadata.json", "bundle")],
        start=start,
    )
    embedding = RunRecord(
        name="embedding",
        params={"vocab_size": options.get("vocab_size"), "corpus": options.get("corpus", [])}
        | {f"word2vec.{k}": v for k, v in options.get("word2vec", {}).items()},
        metrics=metric_values(
            {"seconds": {k: timings[k] for k in ("tokenizer", "word2vec") if k in timings}}
        ),
        series={
            "word2vec.loss": [(w, loss) for w, loss, _ in metadata.get("word2vec_curve", [])],
            "word2vec.words_per_second": [
                (w, wps) for w, _, wps in metadata.get("word2vec_curve", [])
            ],
        },
        tags={"upvote.version": tags["upvote.version"], "upvote.stage": "embedding"},
        start=start + timings.get("data", 0.0),
        end=start + sum(timings.get(k, 0.0) for k in ("data", "tokenizer", "word2vec")),
    )
    return run, embedding


def log_training(
    tracking: Tracking, metadata: dict, results: dict, bundle: Path, source: str, start: float
) -> str | None:
    """Log one `upvote train` (a run with the embedding run nested in it); the run id or None."""
    run, embedding = training_runs(metadata, results, bundle, source, start)
    run_id = tracking.log_run(run)
    if run_id is not None:
        tracking.log_run(embedding, parent=run_id)
    return run_id


def embedding_run(
    params: dict,
    out: Path,
    corpus: str,
    tokenizer: str,
    sizes: dict[str, float],
    seconds: dict[str, float],
    curve: Curve,
    start: float,
) -> RunRecord:
    """The run of one `upvote embed train` (``corpus`` already redacted)."""
    metrics = metric_values({"corpus": sizes, "seconds": seconds}) | system_metrics()
    if seconds.get("train"):
        metrics["words_per_second"] = sizes.get("tokens", 0) * params["epochs"] / seconds["train"]
    return RunRecord(
        name=f"embed {out.name}",
        params={**params, "tokenizer": tokenizer, "corpus": corpus},
        metrics=metrics,
        series=curve.series(),
        tags={"upvote.out": str(out.resolve()), "upvote.dataset": corpus},
        artifacts=[(out / "params.json", None)],
        start=start,
    )


def trial_run(trial, study: str) -> RunRecord:
    """One Optuna trial of `upvote tune` (an ``optuna.trial.FrozenTrial``, read by attribute:
    tracking does not import Optuna): its sampled values, the options they made, the validation
    MSE per epoch (also for a pruned trial) and its outcome."""
    state = trial.state.name  # COMPLETE, PRUNED or FAIL
    metrics = {"valid_mse": float(trial.value)} if trial.value is not None else {}
    metrics |= metric_values({"seconds": trial.user_attrs.get("timings", {})})
    tags = {"optuna.study": study, "optuna.trial": str(trial.number), "optuna.state": state}
    if "error" in trial.user_attrs:
        tags["upvote.error"] = str(trial.user_attrs["error"])[:500]
    start = trial.datetime_start.timestamp() if trial.datetime_start else time.time()
    end = trial.datetime_complete.timestamp() if trial.datetime_complete else None
    return RunRecord(
        name=f"trial {trial.number}",
        params={"options": trial.user_attrs.get("options", {})}
        | {f"search.{k}": v for k, v in trial.params.items()},
        metrics=metrics,
        series={"epoch.valid_mse": sorted(trial.intermediate_values.items())},
        tags=tags,
        start=start,
        end=end,
        failed=state == "FAIL",
    )


def study_summary(study, folder: Path) -> tuple[dict[str, float], list[tuple[Path, str | None]]]:
    """The study run's closing metrics (best value, trials by outcome) and files (report,
    best options) once the search ends."""
    states = [t.state.name for t in study.trials]
    outcomes = ("COMPLETE", "PRUNED", "FAIL")
    metrics = {f"trials.{s.lower()}": float(states.count(s)) for s in outcomes}
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if complete:
        metrics["best_valid_mse"] = float(study.best_value)
        metrics["best_trial"] = float(study.best_trial.number)
    files = [(folder / name, None) for name in ("best.json", "report.html")]
    files += [(path, None) for path in sorted(folder.glob("*.png"))]
    return metrics, files
