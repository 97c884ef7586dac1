"""What MLflow tracking costs: `upvote train` with tracking on vs off, and `upvote serve`'s start-up
time and memory now vs an earlier commit (the service must not pay for tracking or the registry).

    python benchmarks/tracking.py [--pairs 2] [--before 1f1055d] [--quick]

Train: pairs of whole `upvote train` processes on the shipped sample, alternating off/on, each in
a fresh UPVOTE_DATA_DIR, once where "on" creates its SQLite store (a user's first run: the worst
case) and once where the store exists (every later run). Serve: for this tree and for
``--before`` (checked out in a temporary git worktree), start `upvote serve` on one trained model
several times, alternating, and time the start until /health answers; the server's resident
memory after start-up and after 200 predictions. Prints ratios against the anchor measured in the
same run (off, and ``--before``).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from serve import free_port

ROOT = Path(__file__).resolve().parents[1]
STORY = {"title": "Show HN: A tiny word2vec in PyTorch", "author": "pg", "timestamp": 1474000000}


def train_seconds(tracking: bool, quick: bool, warm: bool) -> float:
    """One whole `upvote train` in a fresh data folder; ``warm``: its tracking store exists
    already (every run after a user's first), else the run creates it."""
    with tempfile.TemporaryDirectory(prefix="upvote-bench-") as data_dir:
        env = os.environ | {"UPVOTE_DATA_DIR": data_dir, "UPVOTE_TRACKING": str(int(tracking))}
        if warm and tracking:
            create = "from upvote.tracking.client import Tracking; Tracking('upvote-train').ready()"
            subprocess.run([sys.executable, "-c", create], env=env, check=True)
        command = [sys.executable, "-m", "upvote", "train", *(["--quick"] if quick else [])]
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"upvote train failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        said = "tracked: MLflow run" in done.stdout
        if said != tracking:
            sys.exit(f"tracking={tracking} but the output says otherwise:\n{done.stdout[-800:]}")
        return seconds


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve_once(src: Path, data_dir: Path) -> dict:
    port = free_port()
    env = os.environ | {"UPVOTE_DATA_DIR": str(data_dir), "PYTHONPATH": str(src)}
    command = [sys.executable, "-m", "upvote", "serve", "--port", str(port)]
    start = time.perf_counter()
    server = subprocess.Popen(
        [*command, "--log-level", "warning"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.perf_counter() - start > 120:
                    sys.exit(f"upvote serve from {src} did not start")
                time.sleep(0.05)
        started = time.perf_counter() - start
        after_start = rss_mb(server.pid)
        body = json.dumps(STORY).encode()
        for _ in range(200):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/how_many_upvotes",
                data=body,
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                answer.read()
        return {"start_s": started, "rss_start_mb": after_start, "rss_200_mb": rss_mb(server.pid)}
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2, help="off/on pairs per store")
    parser.add_argument("--starts", type=int, default=5, help="server starts per side (0: none)")
    parser.add_argument("--stores", default="new,existing", help="which store cases to time")
    parser.add_argument("--before", default="1f1055d", help="the commit to compare serve with")
    parser.add_argument("--quick", action="store_true", help="train --quick (smoke test)")
    args = parser.parse_args()
    results: dict = {"machine": f"{platform.node()}: {os.cpu_count()} CPUs"}
    results["load_average_1m_before"] = round(os.getloadavg()[0], 2)

    for store in args.stores.split(","):
        seconds: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(args.pairs):
            for side in ("off", "on"):
                seconds[side].append(train_seconds(side == "on", args.quick, store == "existing"))
        ratios = [on / off for off, on in zip(seconds["off"], seconds["on"], strict=True)]
        results[f"train, {store} store"] = {
            "seconds_off": [round(s, 1) for s in seconds["off"]],
            "seconds_on": [round(s, 1) for s in seconds["on"]],
            "ratio_on_to_off": [round(r, 3) for r in ratios],
            "median_ratio": round(statistics.median(ratios), 3),
        }

    if args.starts == 0:
        print(json.dumps(results, indent=2))
        return
    with tempfile.TemporaryDirectory(prefix="upvote-bench-") as tmp:
        data_dir, before = Path(tmp) / "data", Path(tmp) / "before"
        env = os.environ | {"UPVOTE_DATA_DIR": str(data_dir), "UPVOTE_TRACKING": "0"}
        subprocess.run([sys.executable, "-m", "upvote", "train", "--quick"], env=env,
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before),
                        args.before], check=True, capture_output=True)  # fmt: skip
        try:
            sides = {"before": before / "src", "now": ROOT / "src"}
            runs: dict[str, list[dict]] = {name: [] for name in sides}
            for _ in range(args.starts):
                for name, src in sides.items():
                    runs[name].append(serve_once(src, data_dir))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(before)], check=False, capture_output=True)  # fmt: skip
    serve = {}
    for name, measured in runs.items():
        serve[name] = {k: round(statistics.median(r[k] for r in measured), 2) for k in measured[0]}
    serve["ratio_now_to_before"] = {
        k: round(serve["now"][k] / serve["before"][k], 3) for k in serve["now"]
    }
    results["serve"] = serve | {"before_commit": args.before}
    results["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
