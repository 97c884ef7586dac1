"""`upvote retrain` against a real PostgreSQL: pull the new week, train, decide, record, serve.

The database starts with the shipped sample's unfiltered stories (every story of their period,
what a pull of production returns) dated before ``NEW_WEEK``; a champion is pulled and trained on
them. Each test then inserts the sample's real stories of the following week (2016-09-13..19,
~5,500 stories) into ``hacker_news.items``: they are genuinely new to the champion, not copies, so
the comparison is not flattered by duplicated titles. Which outcome a test gets is forced by the
training options (a learning rate too small to learn anything in a few epochs), not by the data.
"""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from upvote.cli import app
from upvote.data.dataset import SAMPLE_DIR, load_stories, read_dataset
from upvote.model.registry import CHALLENGER, CHAMPION, alias_target, history, list_versions
from upvote.model.train import TrainOptions
from upvote.operate import compare
from upvote.operate.retrain import DECISIONS, LOCK
from upvote.serve.app import create_app
from upvote.serve.config import ServeSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from pgserver import PostgresServer, find_bin_dir, insert_items, sample_story_rows

NEW_WEEK = pd.Timestamp("2016-09-13")
POLL = 0.05  # the service's alias poll in these tests
STORY = {"author": "pg", "title": "Show HN: A tiny word2vec in PyTorch", "timestamp": 1700000000}
# a learning rate too small for the network to learn anything in --quick's few epochs
UNTRAINED = {"lr": 1e-6, "max_epochs": 1}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def postgres():
    """A server whose database ``hn`` holds the unfiltered stories before NEW_WEEK; and the
    stories of the week after, as item rows to insert."""
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: install postgresql-15")
    stories = load_stories(SAMPLE_DIR / "stories.parquet")
    unfiltered = stories[(stories["selection"] == "unfiltered") & stories["id"].notna()]
    old = unfiltered[unfiltered["time"] < NEW_WEEK]
    new = unfiltered[unfiltered["time"] >= NEW_WEEK]
    server = PostgresServer.start()
    try:
        insert_items(server.dsn, sample_story_rows(old))
        yield server, sample_story_rows(new)
    finally:
        server.stop()


def _upvote(data_dir: Path, *args: str) -> None:
    env = {**os.environ, "UPVOTE_DATA_DIR": str(data_dir), "UPVOTE_TRACKING": "0"}
    done = subprocess.run([sys.executable, "-m", "upvote", *args], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _champion(postgres, tmp_path_factory, *train_args: str) -> Path:
    """A data dir with the old stories pulled from PostgreSQL and a champion trained on them."""
    server, _ = postgres
    data_dir = tmp_path_factory.mktemp("champion")
    _upvote(data_dir, "data", "pull", "--source", server.dsn)
    _upvote(data_dir, "train", "--quick", *train_args)
    return data_dir


@pytest.fixture(scope="module")
def champion_dir(postgres, tmp_path_factory) -> Path:
    return _champion(postgres, tmp_path_factory)


@pytest.fixture(scope="module")
def weak_champion_dir(postgres, tmp_path_factory) -> Path:
    return _champion(postgres, tmp_path_factory, "--lr", "1e-6", "--epochs", "1")


_databases = iter(range(1000))


def setup_week(postgres, champion: Path, data_dir: Path) -> tuple[str, int]:
    """This test's copy of the champion's data dir and of the database, plus the new week;
    (the database's URL, the number of stories inserted)."""
    server, new_rows = postgres
    shutil.copytree(champion, data_dir, symlinks=True, dirs_exist_ok=True)
    dsn = server.clone(f"week{os.getpid()}_{next(_databases)}")
    insert_items(dsn, new_rows)
    return dsn, len(new_rows)


def options_file(path: Path, **regressor) -> str:
    """A --params file: the default training options, with ``regressor`` changes."""
    options = TrainOptions()
    options = replace(options, regressor=replace(options.regressor, **regressor))
    path.write_text(json.dumps({"options": options.to_dict()}, default=str))
    return str(path)


def decisions(data_dir: Path) -> list[dict]:
    lines = (data_dir / "models" / DECISIONS).read_text().splitlines()
    return [json.loads(line) for line in lines]


def retrain_runs(data_dir: Path) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("upvote-retrain")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def serve(data_dir: Path) -> TestClient:
    settings = ServeSettings(data_dir=data_dir, alias_poll_seconds=POLL)
    return TestClient(create_app(settings))


def served(client: TestClient, version: str, polls: int = 60) -> bool:
    for _ in range(polls):
        if client.get("/version").json()["version"] == version:
            return True
        time.sleep(POLL)
    return False


def test_a_worse_challenger_is_trained_on_the_new_rows_and_kept(
    postgres, champion_dir, isolated_data_dir, tmp_path
):
    data_dir = isolated_data_dir
    dsn, inserted = setup_week(postgres, champion_dir, data_dir)
    champion = alias_target(CHAMPION)
    rows_before = len(read_dataset(data_dir / "datasets" / "stories"))
    worse = options_file(tmp_path / "worse.json", **UNTRAINED)

    done = CliRunner().invoke(app, ["retrain", "--source", dsn, "--quick", "--params", worse])
    assert done.exit_code == 0, done.output

    assert f"pulled {inserted:,} new stories" in done.output  # only the new rows
    assert len(read_dataset(data_dir / "datasets" / "stories")) == rows_before + inserted
    [decision] = decisions(data_dir)
    assert decision["decision"] == "kept"
    assert decision["pulled_rows"] == inserted
    assert decision["champion"] == champion and alias_target(CHAMPION) == champion
    challenger = decision["challenger"]
    assert challenger in list_versions() and alias_target(CHALLENGER) == challenger
    assert pd.Timestamp(decision["window"]["start"]) >= NEW_WEEK  # stories neither trained on
    assert pd.Timestamp(decision["champion_cutoff"]) < NEW_WEEK
    assert decision["window"]["n"] > 100
    ours, theirs = decision["metrics"]["challenger"], decision["metrics"]["champion"]
    assert ours["log_rmse"] > theirs["log_rmse"] + decision["min_gain"]
    assert (
        decision["reason"].startswith("challenger log_rmse") and "not better" in decision["reason"]
    )
    assert decision["sanity"]["ok"]
    [run] = retrain_runs(data_dir)
    assert run.data.tags["upvote.decision"] == "kept"
    assert run.data.params["challenger"] == challenger
    assert run.data.metrics["challenger.log_rmse"] == pytest.approx(ours["log_rmse"])
    assert run.data.metrics["champion.log_rmse"] == pytest.approx(theirs["log_rmse"])
    assert decision["mlflow_run"] == run.info.run_id


def test_a_better_challenger_is_promoted_and_served_without_a_restart(
    postgres, weak_champion_dir, isolated_data_dir, tmp_path
):
    data_dir = isolated_data_dir
    dsn, inserted = setup_week(postgres, weak_champion_dir, data_dir)
    champion = alias_target(CHAMPION)
    good = options_file(tmp_path / "good.json")
    with serve(data_dir) as client:
        assert client.get("/version").json()["version"] == champion
        done = CliRunner().invoke(app, ["retrain", "--source", dsn, "--quick", "--params", good])
        assert done.exit_code == 0, done.output
        [decision] = decisions(data_dir)
        assert decision["decision"] == "promoted", decision["reason"]
        assert decision["pulled_rows"] == inserted
        new = decision["challenger"]
        ours, theirs = decision["metrics"]["challenger"], decision["metrics"]["champion"]
        assert ours["log_rmse"] < theirs["log_rmse"] - decision["min_gain"]
        assert alias_target(CHAMPION) == new and alias_target(CHALLENGER) is None
        assert served(client, new)
        answer = client.post("/how_many_upvotes", json=STORY)
        assert answer.status_code == 200
    event = history()[-1]
    assert (event["action"], event["version"], event["previous"]) == ("promote", new, champion)
    assert event["reason"].startswith("upvote retrain: ")
    assert [r.data.tags["upvote.decision"] for r in retrain_runs(data_dir)] == ["promoted"]

    # nothing new since: the champion already knows the newest stories, so no training at all
    versions = list_versions()
    again = CliRunner().invoke(app, ["retrain", "--source", dsn, "--quick", "--params", good])
    assert again.exit_code == 0, again.output
    assert "pulled 0 new stories" in again.output
    last = decisions(data_dir)[-1]
    assert last["decision"] == "kept" and last["challenger"] is None
    assert "not new to the champion" in last["reason"]
    assert list_versions() == versions and alias_target(CHAMPION) == new


def test_a_killed_retrain_leaves_the_champion_serving_and_the_lock_free(
    postgres, champion_dir, isolated_data_dir
):
    data_dir = isolated_data_dir
    dsn, inserted = setup_week(postgres, champion_dir, data_dir)
    champion, versions = alias_target(CHAMPION), list_versions()
    rows_before = len(read_dataset(data_dir / "datasets" / "stories"))
    env = {**os.environ, "UPVOTE_DATA_DIR": str(data_dir)}
    command = [sys.executable, "-m", "upvote", "retrain", "--source", dsn, "--quick"]
    with serve(data_dir) as client:
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        try:
            for line in first.stdout:
                if line.startswith("training challenger"):
                    break
            else:
                pytest.fail("the retrain ended before training")
            # a second retrain while the first holds the lock: refused, in one line
            second = CliRunner().invoke(app, ["retrain", "--source", dsn, "--quick"])
            assert second.exit_code == 1
            assert f"another retrain is running (pid {first.pid})" in second.output
            assert "Traceback" not in second.output
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            first.stdout.close()
        assert first.returncode == -signal.SIGKILL
        assert alias_target(CHAMPION) == champion
        assert list_versions() == versions  # nothing half-written is visible
        assert client.get("/version").json()["version"] == champion
        assert client.post("/how_many_upvotes", json=STORY).status_code == 200
    with open(data_dir / "models" / LOCK) as lock:  # flock died with the process
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert not (data_dir / "models" / DECISIONS).exists()

    done = CliRunner().invoke(app, ["retrain", "--source", dsn, "--quick"])
    assert done.exit_code == 0, done.output
    assert "pulled 0 new stories" in done.output  # the killed run's pull was complete
    assert len(read_dataset(data_dir / "datasets" / "stories")) == rows_before + inserted
    [decision] = decisions(data_dir)
    assert (
        decision["decision"] in ("promoted", "kept") and decision["challenger"] in list_versions()
    )


def test_every_reports_a_failed_run_goes_on_and_stops_cleanly(isolated_data_dir):
    env = {**os.environ, "UPVOTE_DATA_DIR": str(isolated_data_dir), "UPVOTE_TRACKING": "0"}
    command = [sys.executable, "-m", "upvote", "retrain", "--no-pull", "--every", "1s"]
    loop = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        failures = 0
        for line in loop.stderr:
            assert "Traceback" not in line
            failures += "retrain failed: no champion in" in line
            if failures == 2:  # the loop went on after a failed run
                break
        loop.send_signal(signal.SIGTERM)  # what `docker stop` sends
        out, _ = loop.communicate(timeout=30)
    finally:
        loop.kill()
    assert failures == 2
    assert loop.returncode == 0
    assert out.rstrip().endswith("stopped")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "1x"], "'1x' is not a period like 1d"),
        (["--params", "/nonexistent/best.json"], "--params /nonexistent/best.json"),
        (["--source", "postgresql://u:hunter22@127.0.0.1:1/hn"], "cannot connect to"),
        ([], "no source: pass --source"),
    ],
)
def test_errors_are_one_line_and_leave_the_champion(champion_dir, isolated_data_dir, args, message):
    shutil.copytree(champion_dir, isolated_data_dir, symlinks=True, dirs_exist_ok=True)
    champion = alias_target(CHAMPION)
    done = CliRunner().invoke(app, ["retrain", *args])
    assert done.exit_code in (1, 2)
    assert message in done.output
    assert "Traceback" not in done.output and "hunter22" not in done.output
    assert alias_target(CHAMPION) == champion and list_versions() == [champion]


def test_sanity_checks_catch_nan_crossed_intervals_and_a_constant():
    rng = np.random.default_rng(0)
    good = np.sort(rng.normal(1.5, 1.0, (50, 3)), axis=1)
    outputs = np.column_stack([good[:, 1], good, rng.uniform(size=50)])
    assert compare.sanity(outputs).ok
    nan = outputs.copy()
    nan[3, 0] = np.nan
    assert compare.sanity(nan).failed() == ["finite"]
    crossed = outputs.copy()
    crossed[7, 1:4] = [2.0, 1.0, 3.0]
    assert compare.sanity(crossed).failed() == ["ordered"]
    flat = outputs.copy()
    flat[:, 0] = 1.7
    assert compare.sanity(flat).failed() == ["not_constant"]


def test_the_rule_needs_the_margin_and_a_fair_window():
    champion = {"log_rmse": 1.10}
    assert compare.better({"log_rmse": 1.09}, champion, 0.005)[0]
    assert not compare.better({"log_rmse": 1.097}, champion, 0.005)[0]
    assert not compare.better({"log_rmse": 1.10}, champion, 0.0)[0]
    assert compare.better({"log_rmse": 1.5}, {"log_rmse": float("nan")}, 0.005)[0]
    window = compare.Window("2016-09-19 12:00:00", "2016-09-19 23:59:00", 400)
    assert compare.window_is_new("2016-09-12 23:00:00", window) is None
    assert "not new" in compare.window_is_new("2016-09-19 23:59:00", window)
    assert "no data_cutoff" in compare.window_is_new(None, window)
