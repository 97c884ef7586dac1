"""The defaults of `upvote retrain`, apart from the heavy work so the command line reads them
without importing training."""

from dataclasses import dataclass


@dataclass
class RetrainOptions:
    """Every default of `upvote retrain` (the CLI reads them from here)."""

    source: str | None = None  # PostgreSQL URL or a file; default: DATABASE_URL
    pull: bool = True  # False: train on the dataset as it is (e.g. a file dataset pulled by hand)
    params: str | None = None  # a metadata.json / best.json whose "options" train the challenger
    quick: bool = False  # quick_options: tests and smoke runs
    # Log RMSE the challenger must win by: 0.005 is about twice the seed-to-seed sd of the default
    # model's test log RMSE (0.002; benchmarks/RESULTS.md, "Upvote model"). A smaller gain is as
    # likely the luck of a seed as progress, and each promotion changes what users see. (Both
    # models are scored on the same stories, so the window's own noise largely cancels.)
    min_gain: float = 0.005
    batch_size: int = 25_000  # rows per PostgreSQL round trip of the pull
