"""`upvote monitor`: how a model in production is doing. ``--drift``: its inputs and predictions
against the reference profile of its training data (``drift_report.py``)."""

from pathlib import Path

import typer

from upvote.console import fail


def monitor(
    drift: bool = typer.Option(
        False, "--drift", help="PSI and KS per feature against the model's reference profile."
    ),
    model: str = typer.Option("champion", "--model", help="Registry version or alias."),
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
    """Monitor a model in production: with --drift, the drift of the newest stories of its
    prediction log (or of pulled stories) against its reference profile."""
    if not drift:
        fail("say what to monitor: use --drift")
    if log_dir is not None and since is not None:
        fail("--log-dir (the prediction log) and --since (pulled stories) exclude each other")
    print_drift(model, log_dir, since, last)


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
