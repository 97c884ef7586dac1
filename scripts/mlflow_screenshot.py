"""Take the MLflow UI screenshot of docs/experiments.md with headless Chromium.

    python scripts/mlflow_screenshot.py [--out docs/img/mlflow-runs.png]

Trains a few quick models (and one default one) into a temporary UPVOTE_DATA_DIR, so that the
runs table has something to compare, starts `upvote ui`'s server on a free local port and saves a
picture of the runs of the experiment ``upvote-train`` side by side, charted by a metric.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from upvote.serve.deploy import free_port

CHROMIUM = "/usr/bin/chromium"
RUNS = [  # (label, extra options of `upvote train`)
    ("default", []),
    ("quick", ["--quick"]),
    ("quick, ridge", ["--quick", "--model", "ridge"]),
    ("quick, dim 16", ["--quick", "--dim", "16"]),
]


def wait_for(url: str, seconds: float = 60.0) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return json.load(answer)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img/mlflow-runs.png"))
    parser.add_argument("--metric", default="spearman", help="Charts whose name holds this.")
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="upvote-shot-"))
    env = os.environ | {"UPVOTE_DATA_DIR": str(data_dir)}
    for label, options in RUNS:
        print(f"training ({label}) ...", flush=True)
        command = [sys.executable, "-m", "upvote", "train", *options]
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "upvote", "ui", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        found = wait_for(f"{base}/ajax-api/2.0/mlflow/experiments/search?max_results=10")
        experiment = next(e for e in found["experiments"] if e["name"] == "upvote-train")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1500, "height": 850})
            runs = f"{base}/#/experiments/{experiment['experiment_id']}/runs"
            page.goto(runs)
            # MLflow 3 opens on its GenAI view; runs of model training are behind this switch
            page.get_by_text("Model training", exact=True).first.click()
            page.goto(runs)
            page.get_by_text("train 2", exact=False).first.wait_for(timeout=60_000)
            page.get_by_label("Close").first.click()  # the assistant's side panel
            page.goto(runs + "?compareRunsMode=CHART")
            page.get_by_placeholder("Search metric charts").fill(args.metric)
            time.sleep(5)  # the charts draw
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            browser.close()
        print(f"wrote {args.out}")
    finally:
        ui.terminate()
        ui.wait(10)


if __name__ == "__main__":
    main()
