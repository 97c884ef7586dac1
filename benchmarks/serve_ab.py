"""The serving benchmark (serve.py), this tree against an earlier commit, alternating in one run.

    python benchmarks/serve_ab.py --data-dir DIR --before e32cea4 [--rounds 3] [--duration 10]

Each round runs serve.py's closed loops (/ping and /how_many_upvotes, interleaved) on a fresh
`upvote serve` of the earlier commit (checked out in a temporary git worktree, imported through
PYTHONPATH) and of this tree, on the same trained model. Prints per side the throughputs, the
/how_many_upvotes / no-op ratio and the server's CPU ms per request, and the ratio of this tree's
/how_many_upvotes throughput (and CPU per request) to the earlier commit's, round by round and
as a median: what a change costs per request, with the machine's drift cancelled by alternating.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from serve import STORY, against_server, closed_loop, data_dir_parser, interleaved, request_bytes

ROOT = Path(__file__).resolve().parents[1]


async def phases(port: int, pid: int, duration: float, connections: int, slices: int) -> dict:
    ping = request_bytes("GET", "/ping")
    predict = request_bytes("POST", "/how_many_upvotes", STORY)
    await closed_loop(port, predict, connections, 2)  # warm-up
    both = {"noop": ping, "model": predict}
    loops = await interleaved(port, pid, both, connections, duration, slices)
    noop, model = loops["noop"], loops["model"]
    return {
        "noop_rps": noop["throughput_rps"],
        "model_rps": model["throughput_rps"],
        "ratio_to_noop": round(model["throughput_rps"] / noop["throughput_rps"], 3),
        "model_cpu_ms": model.get("server_cpu_ms_per_request"),
    }


def main() -> None:
    parser = data_dir_parser(__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="seconds per closed loop")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--slices", type=int, default=10, help="alternations of the two loops")
    args = parser.parse_args()
    rounds: dict[str, list[dict]] = {"before": [], "now": []}
    with tempfile.TemporaryDirectory(prefix="upvote-ab-") as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree),
                        args.before], check=True, capture_output=True)  # fmt: skip
        try:
            for _ in range(args.rounds):
                for side, src in (("before", tree / "src"), ("now", ROOT / "src")):
                    os.environ["PYTHONPATH"] = str(src)  # the server process imports this tree

                    def load(port, pid):
                        return phases(port, pid, args.duration, args.connections, args.slices)

                    result = against_server(args.data_dir, load)
                    rounds[side].append(result)
        finally:
            os.environ.pop("PYTHONPATH", None)
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                           check=False, capture_output=True)  # fmt: skip
    pairs = list(zip(rounds["before"], rounds["now"], strict=True))
    ratios = [now["model_rps"] / before["model_rps"] for before, now in pairs]
    summary = {
        "before_commit": args.before,
        "rounds": rounds,
        "model_rps_now_to_before": [round(r, 3) for r in ratios],
        "median_model_rps_now_to_before": round(statistics.median(ratios), 3),
        "median_ratio_to_noop": {
            side: statistics.median(r["ratio_to_noop"] for r in runs)
            for side, runs in rounds.items()
        },
    }
    if all(r["model_cpu_ms"] for runs in rounds.values() for r in runs):
        cpu = [now["model_cpu_ms"] / before["model_cpu_ms"] for before, now in pairs]
        summary["median_cpu_per_request_now_to_before"] = round(statistics.median(cpu), 3)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
