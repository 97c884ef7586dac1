"""`upvote retrain`: one retrain (cron, a systemd timer, a compose service), or one every PERIOD.

The work is ``retrain.retrain``; this module parses options, prints, and loops for ``--every``.
"""

import re
import signal
import time

import typer

from upvote.console import fail, warn
from upvote.operate.options import RetrainOptions
from upvote.redact import redact

PERIOD = re.compile(r"(\d+)\s*([smhd])")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def period_seconds(text: str) -> int:
    """'1d', '6h', '30m', '45s' -> seconds; BadParameter otherwise."""
    found = PERIOD.fullmatch(text.strip().lower())
    if not found or int(found[1]) == 0:
        message = f"{text!r} is not a period like 1d, 6h, 30m or 45s"
        raise typer.BadParameter(message, param_hint="--every")
    return int(found[1]) * SECONDS[found[2]]


def retrain(
    source: str = typer.Option(
        None,
        help="postgresql://user:pass@host:port/db, or a .parquet/.csv/.jsonl file "
        "[default: $DATABASE_URL]",
    ),
    pull: bool = typer.Option(
        True, help="Pull new stories first (--no-pull: train on the dataset)."
    ),
    params: str = typer.Option(
        None,
        help="Train the challenger with the options of a metadata.json or best.json, or 'best' "
        "(the study 'upvote') [default: the champion's own options: only the data changes].",
    ),
    quick: bool = typer.Option(False, "--quick", help="Small training budget. For tests."),
    min_gain: float = typer.Option(
        RetrainOptions.min_gain, min=0.0, help="Log RMSE the challenger must beat the champion by."
    ),
    every: str = typer.Option(
        None,
        help="Retrain every PERIOD (1d, 6h, 30m) until stopped; a failed run is reported "
        "and the next one runs on time.",
    ),
) -> None:
    """Pull new stories, train a challenger, compare it with the champion on the newest stories
    (neither trained on them) and promote it only if it is better by --min-gain.

    Every decision is appended to <models>/decisions.jsonl and logged in MLflow (upvote-retrain).
    Exit code 0 whether the challenger is promoted or not; 1 when no decision could be taken.
    """
    from upvote.operate.retrain import RetrainError
    from upvote.operate.retrain import retrain as run_retrain

    period = period_seconds(every) if every is not None else None
    options = RetrainOptions(source, pull, params, quick, min_gain)
    if period is None:
        try:
            run_retrain(options, log=typer.echo)
        except RetrainError as err:
            fail(redact(str(err), source))
        return
    _loop(options, period)


def _loop(options: RetrainOptions, period: int) -> None:
    """Run every ``period`` seconds (start to start) until Ctrl-C or SIGTERM (`docker stop`).

    Any failure of one run is reported in one line and the loop goes on: the champion is never
    touched by a failed run, and the next one may succeed (the database is back, say).
    """
    from upvote.operate.retrain import RetrainError
    from upvote.operate.retrain import retrain as run_retrain

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            began = time.monotonic()
            try:
                run_retrain(options, log=typer.echo)
            except RetrainError as err:
                warn(f"retrain failed: {redact(str(err), options.source)}")
            except Exception as err:  # a bug or a full disk: reported, and the loop goes on
                message = f"{type(err).__name__}: {err}"
                warn(f"retrain failed: {redact(message, options.source)}")
            wait = max(0.0, period - (time.monotonic() - began))
            typer.echo(f"next retrain in {wait:.0f} s")
            time.sleep(wait)
    except KeyboardInterrupt:
        typer.echo("stopped")
