"""The prediction log: append-only JSON lines per model version, rotated by size."""

import json
from datetime import datetime

from upvote.serve.predlog import PredictionLog
from upvote.serve.schemas import HowManyUpvotesIn


def test_records_survive_a_restart_and_are_per_version(tmp_path):
    log = PredictionLog(tmp_path, max_bytes=1_000_000, backups=2)
    log.append("v1", {"title": "a"}, 3.5, 1.25)
    log.append("v2", {"title": "b"}, 7.0, 2.0)
    log.close()

    reopened = PredictionLog(tmp_path, max_bytes=1_000_000, backups=2)
    reopened.append("v1", {"title": "c"}, 4.0, 1.0)
    records = reopened.tail("v1", limit=10)
    assert [r["Input"]["title"] for r in records] == ["a", "c"]
    assert set(records[0]) == {"Timestamp", "Version", "Input", "Prediction", "Latency"}
    assert records[0]["Version"] == "v1" and records[0]["Prediction"] == 3.5
    assert [r["Input"]["title"] for r in reopened.tail("v2", limit=10)] == ["b"]


def test_rotation_keeps_size_bounded_and_newest_records(tmp_path):
    log = PredictionLog(tmp_path, max_bytes=400, backups=2)
    for i in range(40):
        log.append("v1", {"title": f"story {i}"}, float(i), 1.0)
    log.flush()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["predictions-v1.jsonl", "predictions-v1.jsonl.1", "predictions-v1.jsonl.2"]
    assert all((tmp_path / name).stat().st_size <= 400 for name in files)
    titles = [r["Input"]["title"] for r in log.tail("v1", limit=5)]
    assert titles == [f"story {i}" for i in range(35, 40)]
    # older records were dropped with the oldest file, never duplicated
    everything = [r["Input"]["title"] for r in log.tail("v1", limit=1000)]
    assert len(everything) == len(set(everything)) < 40


def test_buffered_records_reach_the_file_on_flush(tmp_path):
    log = PredictionLog(tmp_path, max_bytes=1_000_000, backups=2)
    log.append("v1", {"title": "a"}, 3.5, 1.25)
    log.flush()
    lines = (tmp_path / "predictions-v1.jsonl").read_text().splitlines()
    assert [json.loads(line)["Input"] for line in lines] == [{"title": "a"}]


def test_a_record_holds_the_validated_body_as_pydantic_writes_it(tmp_path):
    """The line is assembled from bytes: the body exactly as ``model_dump_json`` writes it (the
    stripped title, the timestamp with its offset, non-ASCII kept), the numbers as their shortest
    repr, the keys in the contract's order."""
    body = HowManyUpvotesIn.model_validate_json(
        b'{"author": "pg", "title": "  Show HN: \\u00e9t\\u00e9 \\ud83d\\ude80 ", '
        b'"timestamp": "2024-05-01T14:00:00+02:00"}'
    )
    log = PredictionLog(tmp_path, max_bytes=1_000_000, backups=2)
    log.append("v\u00e9", body, 12.345678901234567, 1.23456)
    log.append("v\u00e9", {"title": "a", "id": 7}, 0.1, 2.0, (0.25, 1e-05))
    log.close()
    first, second = (tmp_path / "predictions-v\u00e9.jsonl").read_bytes().splitlines()
    assert f', "Input": {body.model_dump_json()}, '.encode() in first
    records = [json.loads(first), json.loads(second)]
    assert [list(r) for r in records] == [
        ["Timestamp", "Version", "Input", "Prediction", "Latency"],
        ["Timestamp", "Version", "Input", "Prediction", "Interval", "Latency"],
    ]
    assert records[0]["Input"] == {
        "author": "pg",
        "title": "Show HN: \u00e9t\u00e9 \U0001f680",
        "timestamp": "2024-05-01T14:00:00+02:00",
    }
    assert records[0]["Version"] == "v\u00e9" and records[0]["Prediction"] == 12.345678901234567
    assert records[0]["Latency"] == 1.235 and records[1]["Interval"] == [0.25, 1e-05]
    assert records[1]["Input"] == {"title": "a", "id": 7}
    assert datetime.fromisoformat(records[0]["Timestamp"]).tzinfo is not None
