"""`upvote monitor`: how a model in production is doing. By default its live accuracy: the logged
predictions against the scores the stories finally got (``live.py``). ``--drift``: its inputs
and predictions against the reference profile of its training data (``drift_report.py``)."""

from pathlib import Path

import typer

from upvote.console import fail


def monitor(
    drift: bool = typer.Option(
        False, "--drift", help="PSI and KS per feature against the model's reference profile."
    ),
    model: str = typer.Option(
        None,
        "--model",
        help="Registry version or alias (default: every version logged; drift: the champion).",
    ),
    source: str = typer.Option(
        None,
        "--source",
        help="Where the final scores are: postgresql://... (default: $DATABASE_URL) or a "
        "dataset folder / Parquet file (default without a database: the pulled dataset).",
    ),
    log_dir: Path = typer.Option(
        None, "--log-dir", help="Prediction log folder (default: UPVOTE_LOG_DIR, <data>/logs)."
    ),
    since: str = typer.Option(
        None,
        "--since",
        help="Pulled stories newer than TIME (ISO 8601, or 'cutoff': the model's data cutoff) "
        "instead of the prediction log.",
    ),
    last: int = typer.Option(
        None, "--last", min=1, help="The newest N stories (default: UPVOTE_DRIFT_WINDOW, 2000)."
    ),
) -> None:
    """Monitor the model in production: the live accuracy of its logged predictions on stories
    whose score has settled (by day and model version), or with --drift, the drift of the newest
    stories of its prediction log (or of pulled stories) against its reference profile."""
    if not drift:
        if since is not None or last is not None:
            fail("--since and --last go with --drift")
        print_live(model, log_dir, source)
        return
    if source is not None:
        fail("--source goes without --drift (live accuracy)")
    if log_dir is not None and since is not None:
        fail("--log-dir (the prediction log) and --since (pulled stories) exclude each other")
    print_drift(model or "champion", log_dir, since, last)


def print_live(version: str | None, log_dir: Path | None, source: str | None) -> None:
    from upvote.data.files import DataError
    from upvote.model.bundle import ModelNotFoundError
    from upvote.model.registry import resolve_version
    from upvote.monitor.live import SETTLE_HOURS, live_report
    from upvote.redact import redact
    from upvote.settings import get_settings

    settings = get_settings()
    folder = log_dir or settings.logs_dir
    source = source or settings.database_url
    versions = None
    if version is not None:
        try:
            versions = [resolve_version(version).name]
        except ModelNotFoundError as error:
            fail(f"--model {version}: {error}")
    try:
        report = live_report(folder, source, versions)
    except (DataError, OSError) as error:
        fail(redact(str(error), source))
    except ValueError as error:
        fail(str(error))
    shown = report.copy()
    for column in ("log_rmse", "log_mae", "spearman", "coverage_p10_p90"):
        shown[column] = shown[column].map(lambda v: "-" if v != v else f"{v:.3f}")
    columns = ["version", "day", "stories", "seen_in_training", "log_rmse", "log_mae"]
    typer.echo(shown[[*columns, "spearman", "coverage_p10_p90"]].to_string(index=False))
    typer.echo(
        f"{report.attrs['predictions']} logged predictions in {folder}; stories older than "
        f"{SETTLE_HOURS:g} h the model never saw are scored (seen_in_training: counted only); "
        f"figures left in {folder / 'live_accuracy.json'} for the service's gauges"
    )


def print_drift(version: str, log_dir: Path | None, since: str | None, last: int | None) -> None:
    from upvote.data.files import DataError
    from upvote.model.bundle import ModelNotFoundError
    from upvote.model.registry import load_model
    from upvote.monitor import drift_report
    from upvote.serve.config import ServeSettings

    settings = ServeSettings()
    last = last or settings.drift_window
    try:
        model = load_model(version)
    except (ModelNotFoundError, OSError, ValueError) as error:
        fail(f"--model {version}: {error}")
    if model.profile is None:
        fail(
            f"model {model.version} has no reference profile (trained before drift monitoring): "
            "retrain it with `upvote train`"
        )
    if since is not None:
        try:
            start = drift_report.since_time(since, model)
            items = drift_report.from_pulled(model, start, last)
        except (ValueError, DataError) as error:
            fail(f"--since {since}: {error}")
        source = f"pulled stories after {start}"
        if not items:
            fail(f"--since {since}: no pulled stories after {start} (`upvote data pull` first)")
    else:
        folder = log_dir or settings.logs_dir
        try:
            items, skipped = drift_report.from_log(folder, model.version, last, settings)
        except OSError as error:
            fail(f"--log-dir {folder}: {error}")
        if not items:
            fail(f"no prediction log records of model {model.version} in {folder}")
        source = f"the prediction log in {folder}" + (
            f" ({skipped} lines skipped)" if skipped else ""
        )
    report = drift_report.drift(model, items, settings)
    typer.echo(drift_report.format_report(report, model, source))
