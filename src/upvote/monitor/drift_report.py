"""`upvote monitor --drift`: the service's drift table (serve/drift.py) for stories read here.

Two sources of stories, each scored against the reference profile in the model's bundle:

- the prediction log of a model version (serve/predlog.py): the newest ``last`` records, with the
  request's input and the score the service answered. A ``/how_many_upvotes`` record has no url
  (unknown: no domain); a ``/predict`` or ``/explain`` record stores ``"url": null`` whether the
  field was sent or not, so there it counts as a text post.
- pulled stories (``upvote data pull``) newer than a time, by default the model's data cutoff,
  scored here: the unbiased rows only, as the profile's (a file with a `selection` column mixes
  in stories picked for their score).

Plain functions; the thresholds are the service's settings (``ServeSettings``).
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from upvote.data.dataset import load_stories
from upvote.data.schema import UNBIASED
from upvote.model.bundle import UpvoteModel
from upvote.model.profile import FeatureProfile
from upvote.serve.config import ServeSettings
from upvote.serve.drift import DriftReport, measure
from upvote.serve.predlog import PredictionLog, parse_record

CUTOFF = "cutoff"  # --since's word for the model's data cutoff

Items = list[tuple[Mapping[str, Any], float]]  # (story as the model reads it, predicted score)


def log_story(record: Mapping[str, Any]) -> tuple[dict[str, Any], float] | None:
    """A prediction log record -> (story, predicted score); None if it lacks a title or score."""
    inputs, score = record.get("Input"), record.get("Prediction")
    if not isinstance(inputs, dict) or not isinstance(inputs.get("title"), str):
        return None
    if not isinstance(score, int | float) or isinstance(score, bool):
        return None
    story = {"title": inputs["title"]}
    story["by"] = inputs.get("by", inputs.get("author"))
    story["time"] = inputs.get("time", inputs.get("timestamp"))
    if "url" in inputs:  # /predict, /explain; /how_many_upvotes has none: the url is unknown
        story["url"] = inputs["url"]
    return story, float(score)


def from_log(log_dir: Path, version: str, last: int, settings: ServeSettings) -> tuple[Items, int]:
    """The newest ``last`` records of ``version`` in ``log_dir`` as items, oldest first, and how
    many lines were passed over (torn, or not a prediction)."""
    predlog = PredictionLog(log_dir, settings.log_max_bytes, settings.log_backups)
    lines, skipped = predlog.read_tail(version, last)
    items = []
    for line in lines:
        record = parse_record(line)
        item = log_story(record) if record is not None else None
        if item is None:
            skipped += 1
        else:
            items.append(item)
    return items, skipped


def since_time(since: str, model: UpvoteModel) -> pd.Timestamp:
    """``--since``: "cutoff" (the model's data cutoff) or an ISO 8601 time, as naive UTC."""
    text = model.metadata.get("data_cutoff") if since == CUTOFF else since
    if not text:
        raise ValueError(f"model {model.version} does not record its data cutoff: give a time")
    try:
        when = pd.Timestamp(text)
    except ValueError:
        raise ValueError("not a time (ISO 8601, e.g. 2016-09-20) nor 'cutoff'") from None
    return when.tz_convert("UTC").tz_localize(None) if when.tzinfo else when


def from_pulled(model: UpvoteModel, since: pd.Timestamp, last: int) -> Items:
    """The newest ``last`` unbiased pulled stories dated after ``since``, scored by ``model``."""
    stories = load_stories()
    if "selection" in stories.columns:
        stories = stories[stories["selection"].isin(UNBIASED)]
    stories = stories[stories["time"] > since].sort_values("time", kind="stable").tail(last)
    scores = np.expm1(np.maximum(model.predict_log(stories)[:, 0], 0.0)).tolist()
    return list(zip(stories.to_dict("records"), scores, strict=True))


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _reference(feature: FeatureProfile) -> str:
    """What a feature's reference looks like, in a few characters (the table's last column)."""
    if feature.categories:
        top = max(range(len(feature.props)), key=feature.props.__getitem__)
        return f"commonest {feature.categories[top]} ({feature.props[top]:.0%})"
    sample = feature.sample
    return f"median {np.median(sample):.3g}" if len(sample) else ""


def format_report(report: DriftReport, model: UpvoteModel, source: str) -> str:
    """The table `upvote monitor --drift` prints: per feature the window's stories, PSI, KS,
    status and what the reference looks like."""
    psi_limit = next((f.psi_threshold for f in report.features), None)
    ks_limit = next((f.ks_threshold for f in report.features if f.ks_threshold), None)
    lines = [
        f"model {report.version}; reference: {report.reference}",
        f"window: {report.window} stories from {source}",
        f"alert over PSI {psi_limit} or KS {ks_limit}, with at least {report.min_stories} stories",
        "",
        f"{'feature':<12} {'kind':<12} {'stories':>7} {'PSI':>7} {'KS':>7}  {'status':<16} "
        "reference",
    ]
    for f in report.features:
        reference = _reference(model.profile.features[f.feature])
        lines.append(
            f"{f.feature:<12} {f.kind:<12} {f.stories:>7} {_number(f.psi):>7} {_number(f.ks):>7}"
            f"  {f.status:<16} {reference}"
        )
    alerts = [f.feature for f in report.features if f.alert]
    lines += ["", f"status: {report.status}" + (f" ({', '.join(alerts)})" if alerts else "")]
    return "\n".join(lines)


def drift(model: UpvoteModel, items: Items, settings: ServeSettings) -> DriftReport:
    """The service's ``measure`` over exactly these items (the window is all of them)."""
    return measure(model, items, settings.model_copy(update={"drift_window": max(len(items), 1)}))
