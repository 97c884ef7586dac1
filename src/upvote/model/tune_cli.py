"""`upvote tune`: search the training options with Optuna (the search itself is in tune.py)."""

import typer

from upvote.console import fail

TRIALS_WITHOUT_LIMIT = 20  # neither --trials nor --timeout: a search that ends


def tune(
    trials: int = typer.Option(
        None, min=1, help=f"Trials to run (default {TRIALS_WITHOUT_LIMIT} without --timeout)."
    ),
    timeout: float = typer.Option(
        None, min=1, help="Stop starting trials after this many seconds."
    ),
    jobs: int = typer.Option(1, min=1, help="Trials run in parallel threads (Optuna n_jobs)."),
    study: str = typer.Option("upvote", help="Study name; an existing one goes on."),
    storage: str = typer.Option(
        None,
        help="Optuna storage URL (default: sqlite under UPVOTE_DATA_DIR); e.g. "
        "postgresql+psycopg://user@host/db, so that several machines share one study.",
    ),
    quick: bool = typer.Option(
        False, "--quick", help="The small budget of `upvote train --quick` (tests, smoke runs)."
    ),
    max_rows: int = typer.Option(
        None, min=100, help="Use only the N most recent unbiased stories."
    ),
    seed: int = typer.Option(None, help="Sampler and training seed (default: UPVOTE_SEED, 0)."),
) -> None:
    """Search word2vec, feature and regressor options on the validation split (Optuna: TPE
    sampler, median pruner); write the best trial's options and a report.

    `upvote train --params best` then trains the best trial of the study "upvote".
    """
    from dataclasses import replace

    try:
        from sqlalchemy.exc import SQLAlchemyError  # comes with Optuna
    except ImportError:
        fail("upvote tune needs Optuna: pip install 'upvote[mlops]'")

    from upvote.model.train import TrainOptions
    from upvote.model.tune import STUDY_NAME, study_dir, write_best
    from upvote.model.tune import tune as run_tuning
    from upvote.model.tune_report import write_report
    from upvote.redact import redact
    from upvote.settings import get_settings
    from upvote.tracking.client import Tracking
    from upvote.tracking.records import RunRecord
    from upvote.tracking.runs import study_summary, trial_run

    if not STUDY_NAME.fullmatch(study):
        message = f"{study!r}: letters, digits, '_', '.' and '-' only (it names a folder)"
        raise typer.BadParameter(message, param_hint="--study")
    seed = get_settings().seed if seed is None else seed
    defaults = TrainOptions(max_rows=max_rows)
    base = replace(
        defaults,
        word2vec=replace(defaults.word2vec, seed=seed),
        regressor=replace(defaults.regressor, seed=seed),
    )
    if trials is None and timeout is None:
        trials = TRIALS_WITHOUT_LIMIT
    # the study is an MLflow run and every trial a run nested in it (tracking/runs.py)
    tracking = Tracking("upvote-tune", say=typer.echo)
    where = redact(storage or "default")
    search = {"trials": trials, "timeout": timeout, "jobs": jobs, "quick": quick, "seed": seed}
    study_run = RunRecord(
        name=f"study {study}",
        params=search | {"max_rows": max_rows, "storage": where},
        tags={"optuna.study": study},
    )
    parent = tracking.open_run(study_run)

    def track_trial(trial) -> None:
        if parent is not None:
            tracking.log_run(trial_run(trial, study), parent=parent)

    try:
        found = run_tuning(
            base,
            study_name=study,
            storage=storage,
            trials=trials,
            timeout=timeout,
            jobs=jobs,
            seed=seed,
            quick=quick,
            log=typer.echo,
            on_trial_end=track_trial,
        )
    except (SQLAlchemyError, ImportError) as err:
        first = redact(str(err), storage).splitlines()[0]
        if parent is not None:
            tracking.finish_run(parent, replace(study_run, failed=True))
        fail(f"--storage {where}: {first}")
    report = write_report(found, study_dir(study))
    typer.echo(f"report: {report}")
    try:
        best = write_best(found)
    except ValueError as err:
        fail(str(err))
    finally:
        if parent is not None:
            metrics, files = study_summary(found, study_dir(study))
            tracking.finish_run(parent, replace(study_run, metrics=metrics, artifacts=files))
    typer.echo(f"best trial {found.best_trial.number}: validation MSE {found.best_value:.4f}")
    typer.echo(f"best options: {best} (`upvote train --params {best}`)")
    if parent is not None:
        typer.echo(f"tracked: MLflow run {parent} in {tracking.where} (browse: upvote ui)")
