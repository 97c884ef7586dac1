"""The one train/validation/test split every stage uses: by time, never shuffled across time.

Validation and test are the most recent stories, as in production where a model trained on the past
scores new titles. Stories sharing a timestamp never straddle a boundary (so no split sees a story
from "the future" of a later split), and stories without a time go to ``undated``, never to
validation or test.
"""

from typing import NamedTuple

import numpy as np
import pandas as pd


class Split(NamedTuple):
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    undated: pd.DataFrame


def time_split(df: pd.DataFrame, valid_fraction: float = 0.1, test_fraction: float = 0.1) -> Split:
    """Split dated rows by time into train < valid < test; undated rows are returned apart."""
    if not (
        0 <= valid_fraction < 1 and 0 <= test_fraction < 1 and valid_fraction + test_fraction < 1
    ):
        raise ValueError(
            f"valid_fraction ({valid_fraction}) and test_fraction ({test_fraction}) must be in "
            "[0, 1) and sum to less than 1"
        )
    undated = df[df["time"].isna()]
    dated = df[df["time"].notna()]
    order = ["time", "id"] if "id" in dated.columns else ["time"]
    dated = dated.sort_values(order, kind="stable", na_position="last")
    times = dated["time"].to_numpy()
    n = len(dated)

    def boundary(position: int) -> int:
        # Move forward past rows sharing the timestamp: ties stay on the earlier side.
        position = min(max(position, 0), n)
        if 0 < position < n:
            position = int(np.searchsorted(times, times[position - 1], side="right"))
        return position

    test_start = boundary(n - round(n * test_fraction))
    valid_start = min(
        boundary(n - round(n * test_fraction) - round(n * valid_fraction)), test_start
    )
    return Split(
        train=dated.iloc[:valid_start],
        valid=dated.iloc[valid_start:test_start],
        test=dated.iloc[test_start:],
        undated=undated,
    )
