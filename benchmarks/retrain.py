"""How long `upvote retrain` takes on the shipped sample plus one new week, against a real
PostgreSQL, as a whole process; with the default training's time measured in the same run as the
anchor.

    python benchmarks/retrain.py

A throw-away PostgreSQL (tests/data/pgserver.py) holds the sample's unfiltered stories before
2016-09-13; they are pulled and a champion is trained with the default options (timed: the
anchor). Then the real stories of the following week are inserted and `upvote retrain` (default
options: pull, challenger, comparison, decision, MLflow run) is timed. Prints both times, their
ratio, and the decision.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from upvote.data.dataset import SAMPLE_DIR, load_stories

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "data"))
from pgserver import PostgresServer, insert_items, sample_story_rows

NEW_WEEK = pd.Timestamp("2016-09-13")


def timed(data_dir: Path, *args: str) -> tuple[float, str]:
    env = os.environ | {"UPVOTE_DATA_DIR": str(data_dir)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "upvote", *args], env=env, capture_output=True,
                          text=True)  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"upvote {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all-rows", action="store_true",
                        help="every sample story with an id and a time, not only the 2016 "
                        "unfiltered ones (a pull labels all unfiltered: timing only)")  # fmt: skip
    args = parser.parse_args()
    stories = load_stories(SAMPLE_DIR / "stories.parquet")
    stories = stories[stories["id"].notna() & stories["time"].notna()]
    if not args.all_rows:
        stories = stories[stories["selection"] == "unfiltered"]
    old, new = stories[stories["time"] < NEW_WEEK], stories[stories["time"] >= NEW_WEEK]
    load_before = os.getloadavg()[0]
    server = PostgresServer.start()
    try:
        insert_items(server.dsn, sample_story_rows(old))
        with tempfile.TemporaryDirectory(prefix="upvote-bench-") as tmp:
            data_dir = Path(tmp)
            timed(data_dir, "data", "pull", "--source", server.dsn)
            train_s, _ = timed(data_dir, "train", "--promote")
            insert_items(server.dsn, sample_story_rows(new))
            retrain_s, _ = timed(data_dir, "retrain", "--source", server.dsn)
            decisions = (data_dir / "models" / "decisions.jsonl").read_text().splitlines()
            decision = json.loads(decisions[-1])
    finally:
        server.stop()
    print(json.dumps({
        "old_stories": len(old), "new_week_stories": len(new),
        "train_seconds": round(train_s, 1), "retrain_seconds": round(retrain_s, 1),
        "retrain_to_train": round(retrain_s / train_s, 2),
        "decision": decision["decision"], "reason": decision["reason"],
        "pulled_rows": decision["pulled_rows"],
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
