"""Champion vs challenger on the same newest stories: the window, the scores, the checks, the rule.

The window is the challenger's time-based test split: the newest stories of the updated data,
which the challenger never trained on. It is fair to the champion only if the champion's data
ended before it (``data_cutoff`` in its metadata, the newest story it saw); otherwise the
champion would be scored on its own training data, and no decision is taken.

Each model is scored as it would serve those stories. The champion: its bundle as it is, with the
track records frozen at its own, older cutoff. The challenger: its bundle's network, tokenizer and
title score, but the domain and author track records frozen just before the window (as
``train.evaluate`` scores its test split), because the bundle's own store was fitted up to the
window's end and holds the very scores being predicted.

The rule uses one primary metric, log RMSE (RMSE of log1p(score)): it is what the network
minimises, and unlike Spearman it also sees a shift of the whole level (drift in how many points
stories get), which a rank correlation ignores. Spearman and log R² are recorded beside it.
"""

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from upvote.data.schema import UNFILTERED
from upvote.model.bundle import UpvoteModel
from upvote.model.evaluate import interval_coverage, log_target, regression_metrics
from upvote.model.features import Featurizer
from upvote.model.history import HistoryStore

METRIC = "log_rmse"  # the primary metric: lower is better
RULE = "promote iff the challenger is sane and its log_rmse < the champion's log_rmse - min_gain"
CONSTANT_SD = 1e-6  # predictions with a smaller spread (log1p scale) have collapsed to a constant
REPORTED = ("log_rmse", "log_r2", "log_mae", "spearman", "raw_rmse")


@dataclass(frozen=True)
class Window:
    """The stories both models are scored on."""

    start: str  # time of the oldest story
    end: str  # time of the newest story
    n: int

    @classmethod
    def of(cls, stories: pd.DataFrame) -> "Window":
        return cls(str(stories["time"].min()), str(stories["time"].max()), len(stories))


@dataclass(frozen=True)
class Sanity:
    """Checks of the challenger's outputs on the window; ``ok`` only if all hold."""

    finite: bool  # no NaN or infinity in any output
    ordered: bool  # p10 <= p50 <= p90 on every story
    not_constant: bool  # the predicted mean varies across stories

    @property
    def ok(self) -> bool:
        return self.finite and self.ordered and self.not_constant

    def failed(self) -> list[str]:
        return [name for name, passed in asdict(self).items() if not passed]


def window_is_new(champion_cutoff: str | None, window: Window) -> str | None:
    """None when the champion's data ended before the window; else why there is no fair test."""
    if not champion_cutoff:
        return "the champion's metadata has no data_cutoff: cannot tell what it trained on"
    if pd.Timestamp(champion_cutoff) >= pd.Timestamp(window.start):
        return (
            f"the window ({window.start} .. {window.end}) is not new to the champion (its data "
            f"runs to {champion_cutoff}): no new stories since it was trained?"
        )
    return None


def as_of(model: UpvoteModel, history: pd.DataFrame, start: str) -> Featurizer:
    """``model``'s featurizer with its track records refitted on ``history`` before ``start``."""
    featurizer = model.featurizer
    if featurizer.history is None:
        return featurizer
    before = history[history["time"] < pd.Timestamp(start)]
    store = HistoryStore.fit(before, featurizer.history.config)
    keys = model.vectors.key_to_index
    return Featurizer(featurizer.tokenizer, keys, featurizer.config, store, featurizer.text_score)


def predictions(model: UpvoteModel, stories: pd.DataFrame, featurizer: Featurizer) -> np.ndarray:
    """[N, 5] log-scale outputs (mean, p10, p50, p90, P(reach)) as ``predict_log`` gives them."""
    return model.predict_log_features(featurizer.transform(stories, selection=UNFILTERED))


def scores(stories: pd.DataFrame, predicted: np.ndarray) -> dict[str, float]:
    """The recorded metrics of ``predicted`` against the stories' real scores."""
    y = log_target(stories["score"])
    with np.errstate(all="ignore"):  # a broken model's NaNs give NaN metrics, not warnings
        metrics = regression_metrics(y, predicted[:, 0])
        inside = interval_coverage(y, predicted[:, 1:4])["inside_p10_p90"]
    return {key: metrics[key] for key in REPORTED} | {"inside_p10_p90": inside}


def sanity(predicted: np.ndarray) -> Sanity:
    """The checks of ``predictions``' output (each judged on what it can see: a NaN fails
    ``finite`` only, and the spread is that of the finite means)."""
    finite = bool(np.isfinite(predicted).all())
    with np.errstate(invalid="ignore"):  # NaN compares False: not counted as crossed
        ordered = not bool(np.any(np.diff(predicted[:, 1:4], axis=1) < 0))
    means = predicted[:, 0][np.isfinite(predicted[:, 0])]
    spread = float(np.std(means)) if len(means) else 0.0
    return Sanity(finite, ordered, spread > CONSTANT_SD)


def better(challenger: dict, champion: dict, min_gain: float) -> tuple[bool, str]:
    """The rule on the primary metric (sanity is checked apart): (promote?, why, in words).

    A champion whose metric is not a number (a broken bundle) loses to any sane challenger."""
    new, old = challenger[METRIC], champion[METRIC]
    if not np.isfinite(old):
        return True, f"the champion's {METRIC} is {old} on the window"
    gain = old - new
    verdict = "better" if gain > min_gain else "not better"
    return gain > min_gain, (
        f"challenger {METRIC} {new:.4f} vs champion {old:.4f}: gain {gain:+.4f}, "
        f"{verdict} than the margin {min_gain:g}"
    )
