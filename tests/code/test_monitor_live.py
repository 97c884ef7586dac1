"""Live accuracy: logged predictions joined to the scores the stories got later, on a hand-made
example whose figures are worked out here by hand."""

import json
import math
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from upvote.cli import app
from upvote.monitor.live import accuracy, match_outcomes, read_predictions, write_summary
from upvote.serve.live_gauges import LiveAccuracy
from upvote.serve.predlog import FLUSH_SECONDS, PredictionLog
from upvote.settings import get_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from pgserver import PostgresServer, find_bin_dir, insert_items

NOW = datetime(2026, 11, 20, 12, 0)  # naive UTC, as the data layer's times
DAY = timedelta(days=1)


def log_predictions(log_dir, records) -> None:
    """Write records through the service's own prediction log."""
    predlog = PredictionLog(log_dir, max_bytes=10_000_000, backups=2)
    for version, inputs, predicted, interval in records:
        predlog.append(version, inputs, predicted, 1.0, interval)
    predlog.close()


@pytest.fixture
def example(tmp_path):
    t1, t2, t3 = NOW - 3 * DAY, NOW - 2 * DAY, NOW - 5 * DAY
    records = [
        # matched by id: predicted 3 for a story that got 3 -> error 0, inside [1, 5]
        ("v1", {"title": "A", "id": 101, "time": t1.isoformat()}, 3.0, (1.0, 5.0)),
        # the same story predicted again: only the first prediction counts
        ("v1", {"title": "A", "id": 101, "time": t1.isoformat()}, 100.0, (90.0, 110.0)),
        # matched by title and time (a /how_many_upvotes body): predicted 7, got 15 -> log 2 off,
        # outside [1, 10]
        ("v1", {"title": "B", "author": "pg", "timestamp": t2.isoformat()}, 7.0, (1.0, 10.0)),
        # posted before v1's data cutoff: the model may have seen it -> counted, not scored
        ("v1", {"title": "C", "id": 103, "time": t3.isoformat()}, 50.0, None),
        # no such story: dropped
        ("v1", {"title": "nobody posted this", "time": t1.isoformat()}, 9.0, None),
        # another version
        ("v2", {"title": "B", "time": t2.isoformat()}, 15.0, (10.0, 20.0)),
    ]
    log_predictions(tmp_path, records)
    stories = pd.DataFrame(
        {
            "id": [101, 102, 103, 104],
            "title": ["A", "B", "C", "D"],
            "time": [t1, t2, t3, NOW - DAY / 2],
            "score": [3, 15, 40, 1],
        }
    )
    cutoffs = {"v1": (NOW - 4 * DAY).isoformat(), "v2": None}
    return tmp_path, stories, cutoffs


def test_the_monitor_reports_correct_figures_on_a_hand_made_example(example):
    log_dir, stories, cutoffs = example
    predictions = read_predictions(log_dir)
    assert len(predictions) == 6 and predictions.attrs["skipped"] == 0
    joined = match_outcomes(predictions, stories, now=NOW)
    assert sorted(zip(joined["version"], joined["story_id"], strict=True)) == [
        ("v1", 101),
        ("v1", 102),
        ("v1", 103),
        ("v2", 102),
    ]
    report = accuracy(joined, cutoffs).set_index(["version", "day"])
    v1 = report.loc[("v1", "all")]
    assert v1["stories"] == 2 and v1["seen_in_training"] == 1
    # errors on log1p: 0 and log(8) - log(16) = -log 2
    assert v1["log_rmse"] == pytest.approx(math.log(2) / math.sqrt(2))
    assert v1["log_mae"] == pytest.approx(math.log(2) / 2)
    assert v1["coverage_p10_p90"] == pytest.approx(0.5)
    assert math.isnan(v1["spearman"])  # two stories: no rank correlation
    by_day = report.loc["v1"].drop(index="all")
    posted = (NOW - 3 * DAY).strftime("%Y-%m-%d")
    assert by_day.loc[posted, "stories"] == 1 and by_day.loc[posted, "log_rmse"] == 0
    v2 = report.loc[("v2", "all")]
    assert v2["stories"] == 1 and v2["log_rmse"] == pytest.approx(0) and v2["coverage_p10_p90"] == 1


def test_unsettled_stories_and_far_titles_are_not_scored(example):
    log_dir, stories, _ = example
    predictions = read_predictions(log_dir)
    # 12 h after story A was posted its score has not settled: A is left out, C (older) is in
    early = match_outcomes(predictions, stories, now=NOW - 3 * DAY + DAY / 2)
    assert 101 not in set(early["story_id"]) and 103 in set(early["story_id"])
    # the same title posted a month later is another story: no match by title
    later = stories.assign(time=stories["time"] + pd.Timedelta(days=30))
    matched = match_outcomes(predictions, later, now=NOW + 40 * DAY)
    assert set(matched["story_id"]) == {101, 103}  # by id only; B's title is 30 days off


def test_the_summary_becomes_prometheus_gauges(example):
    log_dir, stories, cutoffs = example
    report = accuracy(match_outcomes(read_predictions(log_dir), stories, now=NOW), cutoffs)
    path = write_summary(report, log_dir)
    assert json.loads(path.read_text())["versions"]["v1"]["stories"] == 2
    gauges = {m.name: m for m in LiveAccuracy(log_dir).collect()}
    rmse = {s.labels["version"]: s.value for s in gauges["upvote_live_log_rmse"].samples}
    assert rmse["v1"] == pytest.approx(math.log(2) / math.sqrt(2))
    assert {s.labels["version"] for s in gauges["upvote_live_stories"].samples} == {"v1", "v2"}
    assert next(iter(LiveAccuracy(log_dir / "missing").collect())).samples == []


@pytest.mark.skipif(find_bin_dir() is None, reason="PostgreSQL binaries (initdb) not found")
def test_upvote_monitor_scores_a_real_servers_predictions_against_postgresql(
    live_server, trained_dir, tmp_path, monkeypatch
):
    """A real server logs predictions (into tmp_path: conftest's live_server); the stories get
    their scores in PostgreSQL later; `upvote monitor` reports the figures worked out here, and
    the server exports them."""
    posted = datetime.now(UTC).replace(tzinfo=None, microsecond=0) - 3 * DAY
    stories = [
        {"id": 900_001, "title": "Show HN: A tiny word2vec in Rust", "score": 120},
        {"id": 900_002, "title": "Ask HN: How do you back up your photos?", "score": 4},
        {"id": 900_003, "title": "The unreasonable effectiveness of SQLite", "score": 35},
    ]
    body = {"stories": [{"title": s["title"], "id": s["id"], "time": posted.isoformat()}
                        for s in stories[:2]]}  # fmt: skip
    predicted = [p["predicted_score"] for p in
                 httpx.post(f"{live_server}/predict", json=body).json()["predictions"]]  # fmt: skip
    contract = {"title": stories[2]["title"], "timestamp": posted.isoformat()}  # no id: by title
    predicted.append(httpx.post(f"{live_server}/how_many_upvotes", json=contract).json()["upvotes"])
    server = PostgresServer.start()
    try:
        insert_items(server.dsn, [s | {"type": "story", "time": posted} for s in stories])
        time.sleep(2 * FLUSH_SECONDS)  # the server writes its log every FLUSH_SECONDS
        monkeypatch.setenv("UPVOTE_DATA_DIR", str(trained_dir))
        get_settings.cache_clear()
        args = ["monitor", "--source", server.dsn, "--log-dir", str(tmp_path)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    finally:
        server.stop()
    y = np.log1p([s["score"] for s in stories])
    expected = float(np.sqrt(np.mean((np.log1p(predicted) - y) ** 2)))
    summary = json.loads((tmp_path / "live_accuracy.json").read_text())
    ((version, figures),) = summary["versions"].items()
    assert figures["stories"] == 3 and figures["seen_in_training"] == 0
    assert figures["log_rmse"] == pytest.approx(expected)
    assert version in result.output and f"{expected:.3f}" in result.output
    exported = httpx.get(f"{live_server}/metrics").text
    line = next(x for x in exported.splitlines() if x.startswith("upvote_live_log_rmse{"))
    assert f'version="{version}"' in line and float(line.split()[-1]) == pytest.approx(expected)
