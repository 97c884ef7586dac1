"""Live accuracy: the predictions the service logged, scored against the scores the stories
finally got.

A story's score settles within about a day, so only stories older than ``settle_hours`` are
scored. Each logged prediction is matched to its story by the HN id when the request carried one
(``/predict``'s optional ``id``), else by the exact title and a time close to the story's own
(the request's time, or when none was sent, when the prediction was logged). A story the model
could have seen in training (posted before its bundle's data cutoff) is counted but not scored:
only stories the model never saw make an honest figure. One story predicted several times by one
model version counts once, with its first prediction (the one closest to posting).

The figures, per day of posting and per model version, are those of the offline report: RMSE
and MAE on log1p(score), Spearman, and how often the score fell inside the p10-p90 interval.
"""

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from upvote.serve.live_gauges import SUMMARY_FILE
from upvote.serve.predlog import parse_record

SETTLE_HOURS = 24.0  # a score is final about a day after posting
TITLE_MATCH_HOURS = 24.0  # a title match counts when the times are this close


def read_predictions(log_dir: Path, versions: Iterable[str] | None = None) -> pd.DataFrame:
    """Every readable record of the prediction logs (rotated files too) as one row each:
    version, logged (naive UTC), title, id, story_time, predicted, p10, p90. Torn lines are
    skipped (``attrs["skipped"]`` counts them)."""
    wanted = set(versions) if versions is not None else None
    rows, skipped = [], 0
    for path in sorted(log_dir.glob("predictions-*.jsonl*")):
        with path.open("rb") as file:
            for line in file:
                record = parse_record(line)
                if record is None or not isinstance(record.get("Input"), dict):
                    skipped += 1
                    continue
                if wanted is not None and record.get("Version") not in wanted:
                    continue
                inputs, interval = record["Input"], record.get("Interval") or [None, None]
                rows.append(
                    {
                        "version": record.get("Version"),
                        "logged": record.get("Timestamp"),
                        "title": inputs.get("title"),
                        "id": inputs.get("id"),
                        # /predict's stories carry "time", /how_many_upvotes' bodies "timestamp"
                        "story_time": inputs.get("time") or inputs.get("timestamp"),
                        "predicted": record.get("Prediction"),
                        "p10": interval[0],
                        "p90": interval[1],
                    }
                )
    frame = pd.DataFrame(
        rows,
        columns=["version", "logged", "title", "id", "story_time", "predicted", "p10", "p90"],
    )
    for column in ("logged", "story_time"):
        frame[column] = _naive_utc(frame[column])
    frame["id"] = pd.array(frame["id"], dtype="Int64")
    for column in ("predicted", "p10", "p90"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame.attrs["skipped"] = skipped
    return frame


def match_outcomes(
    predictions: pd.DataFrame, stories: pd.DataFrame, now: datetime | None = None
) -> pd.DataFrame:
    """``predictions`` joined to their stories' final ``score`` and ``time`` (columns from
    ``stories``: id, title, time, score); only stories older than SETTLE_HOURS at ``now``."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    stories = stories.dropna(subset=["score", "time"])
    stories = stories[stories["time"] <= now - timedelta(hours=SETTLE_HOURS)]
    stories = stories[["id", "title", "time", "score"]].rename(columns={"id": "story_id"})
    by_id = predictions[predictions["id"].notna()].merge(
        stories, left_on="id", right_on="story_id", how="inner"
    )
    rest = predictions[predictions["id"].isna()].reset_index(names="row")
    by_title = rest.merge(stories, on="title", how="inner")
    when = by_title["story_time"].fillna(by_title["logged"])
    gap = (when - by_title["time"]).abs()
    by_title = by_title.assign(gap=gap)[gap <= pd.Timedelta(hours=TITLE_MATCH_HOURS)]
    # a title posted twice: the story closest in time
    by_title = by_title.sort_values("gap").drop_duplicates("row").drop(columns=["row", "gap"])
    joined = pd.concat([by_id.drop(columns=["title_y"], errors="ignore"), by_title])
    if "title_x" in joined:
        joined["title"] = joined["title"].fillna(joined.pop("title_x"))
    first = joined.sort_values("logged").drop_duplicates(["version", "story_id"])
    return first.reset_index(drop=True)


def accuracy(joined: pd.DataFrame, cutoffs: dict[str, str | None]) -> pd.DataFrame:
    """Per (version, day of posting) and per version overall ("all"): stories scored, stories
    the model may have seen (not scored), RMSE / MAE on log1p, Spearman, p10-p90 coverage."""
    cutoff = joined["version"].map(lambda v: pd.Timestamp(cutoffs[v]) if cutoffs.get(v) else None)
    seen = joined["time"] <= pd.to_datetime(cutoff)
    joined = joined.assign(seen=seen.fillna(False), day=joined["time"].dt.strftime("%Y-%m-%d"))
    rows = []
    for version, group in joined.groupby("version", sort=True):
        for day, part in [*group.groupby("day", sort=True), ("all", group)]:
            rows.append({"version": version, "day": day, **_scores(part)})
    return pd.DataFrame(rows)


def _scores(part: pd.DataFrame) -> dict:
    fresh = part[~part["seen"]]
    y = np.log1p(fresh["score"].astype(float).clip(lower=0).to_numpy())
    pred = np.log1p(fresh["predicted"].astype(float).clip(lower=0).to_numpy())
    err = pred - y
    with_interval = fresh.dropna(subset=["p10", "p90"])
    inside = with_interval["score"].between(with_interval["p10"], with_interval["p90"])
    rho = spearmanr(y, pred).statistic if len(y) >= 3 and np.ptp(pred) > 0 else float("nan")
    return {
        "stories": len(fresh),
        "seen_in_training": int(part["seen"].sum()),
        "log_rmse": float(np.sqrt(np.mean(err**2))) if len(y) else float("nan"),
        "log_mae": float(np.mean(np.abs(err))) if len(y) else float("nan"),
        "spearman": float(rho),
        "coverage_p10_p90": float(inside.mean()) if len(inside) else float("nan"),
        "mean_log_predicted": float(pred.mean()) if len(y) else float("nan"),
        "mean_log_actual": float(y.mean()) if len(y) else float("nan"),
    }


def write_summary(report: pd.DataFrame, log_dir: Path) -> Path:
    """The per-version overall rows as JSON beside the logs, where the service reads them
    (``serve/live_gauges.py``) to export live accuracy to Prometheus."""
    overall = report[report["day"] == "all"]
    summary = {
        "computed": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {
            row["version"]: {k: row[k] for k in report.columns if k not in ("version", "day")}
            for row in overall.to_dict("records")
        },
    }
    path = log_dir / SUMMARY_FILE
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(summary, indent=2, default=_json_number))
    staging.replace(path)  # a scrape reads the old or the new file, never half of one
    return path


def _json_number(value):
    return float(value) if isinstance(value, np.floating | np.integer) else str(value)


def _naive_utc(values: pd.Series) -> pd.Series:
    """ISO strings (with or without offset) or Unix seconds -> naive UTC timestamps."""
    numeric = pd.to_numeric(values, errors="coerce")
    as_seconds = pd.to_datetime(numeric, unit="s", utc=True, errors="coerce")
    as_text = pd.to_datetime(
        values.where(numeric.isna()), utc=True, errors="coerce", format="ISO8601"
    )
    return as_seconds.fillna(as_text).dt.tz_localize(None)


def outcomes_for(predictions: pd.DataFrame, source: str | None) -> pd.DataFrame:
    """The stories the predictions may be about, with their scores as they are now: asked of
    PostgreSQL (``source``: a DSN) by id and title, else read from the pulled dataset (whose
    scores are as of the last pull)."""
    from upvote.data.dataset import load_stories
    from upvote.data.sources import is_postgres, story_outcomes

    if source is not None and is_postgres(source):
        ids = [int(i) for i in predictions["id"].dropna().unique()]
        titles = [str(t) for t in predictions["title"].dropna().unique()]
        return story_outcomes(source, ids, titles)
    return load_stories(source)[["id", "title", "time", "score"]]


def data_cutoffs(versions: Iterable[str]) -> dict[str, str | None]:
    """Each model version's data cutoff, from its bundle (None when the bundle is gone: none of
    its stories can then be recognized as seen in training, so all are scored)."""
    from upvote.model.bundle import ModelNotFoundError
    from upvote.model.registry import resolve_version

    cutoffs: dict[str, str | None] = {}
    for version in versions:
        try:
            metadata = json.loads((resolve_version(version) / "metadata.json").read_text())
            cutoffs[version] = metadata.get("data_cutoff")
        except (ModelNotFoundError, OSError, ValueError):
            cutoffs[version] = None
    return cutoffs


def live_report(
    log_dir: Path, source: str | None = None, versions: Iterable[str] | None = None
) -> pd.DataFrame:
    """Read the prediction logs, fetch the outcomes, score, and leave the summary for the
    service's gauges; the per-day, per-version table."""
    predictions = read_predictions(log_dir, versions)
    if predictions.empty:
        raise ValueError(f"no prediction logs in {log_dir}")
    joined = match_outcomes(predictions, outcomes_for(predictions, source))
    if joined.empty:
        raise ValueError(
            f"none of the {len(predictions)} logged predictions matches a story older than "
            f"{SETTLE_HOURS:g} h with a score (yet)"
        )
    report = accuracy(joined, data_cutoffs(joined["version"].unique()))
    report.attrs = {"predictions": len(predictions), "skipped": predictions.attrs["skipped"]}
    write_summary(report, log_dir)
    return report
