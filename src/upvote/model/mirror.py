"""The registry's mirror in MLflow: each trained version's run, and the aliases.

The registry folder (registry.py) is the source of truth; MLflow only follows it, so nothing here
can undo or block a training, a promotion or a rollback: a failed mirror is said once and repaired
by the next change, which copies every alias. `upvote train`, `upvote models` and `upvote retrain`
all call these after they changed the registry.
"""

import json
from collections.abc import Callable
from pathlib import Path

from upvote.model.registry import LATEST, aliases
from upvote.tracking.client import Tracking

Say = Callable[[str], None]


def mlflow_aliases(root: Path | None = None) -> dict[str, str]:
    """The aliases MLflow mirrors: champion and challenger (MLflow reserves "latest")."""
    return {alias: version for alias, version in aliases(root).items() if alias != LATEST}


def after_alias_change(event: dict, say: Say = print) -> None:
    """Mirror the aliases after a promote or rollback, given the event just logged."""
    if Tracking("upvote-train", say=say).mirror_aliases(mlflow_aliases()):
        say(f"MLflow registry: {event['alias']} -> {event['version']}")


def track_training(
    tracking: Tracking, bundle: Path, results: dict, source: str, started: float, say: Say = print
) -> None:
    """Log a training in MLflow and mirror the new version and the aliases (said once if tracking
    is off): `upvote train`'s models and `upvote retrain`'s challengers alike."""
    from upvote.tracking.runs import log_training

    metadata = json.loads((bundle / "metadata.json").read_text())
    run_id = log_training(tracking, metadata, results, bundle, source, started)
    if run_id is None:
        return
    ours = results["ours"]
    tracking.mirror_version(bundle, run_id, {k: ours[k] for k in ("spearman", "log_r2")})
    tracking.mirror_aliases(mlflow_aliases())  # publish made it challenger (or champion)
    say(f"tracked: MLflow run {run_id} in {tracking.where} (browse: upvote ui)")
