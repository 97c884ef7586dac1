"""Mixed-load benchmark: is the hot path still quick while others misbehave?

A real `upvote serve` in its own process (as in ``serve.py``, whose client this reuses: raw
asyncio HTTP/1.1, 127.0.0.1 only). For ``--duration`` seconds, all at once:

- /how_many_upvotes at a fixed ``--rate`` (open loop: latency counts from the scheduled send
  time, so a stalled server cannot hide its queueing);
- /predict with a batch of 256 stories, back to back on one connection;
- /logs?limit=1000 back to back on two connections, and /metrics once a second;
- bad bodies: a 10 MB POST /predict (Content-Length declared, body really sent) every 0.5 s, and
  hostile JSON (NaN, bad UTF-8, a lone surrogate, malformed) on one connection.

Reported: errors on valid requests (anything but a 200, or a broken connection), p50/p99 of
/how_many_upvotes, what the bad bodies got (413 / 422 expected; any 5xx is counted), and the
server's peak RSS (``VmHWM``). Bounded: every task stops at the deadline.

    python benchmarks/serve_mixed.py --data-dir DIR [--duration 60] [--rate 200]
"""

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from serve import STORY, against_server, data_dir_parser, exchange, open_loop, request_bytes

BIG_BODY_BYTES = 10_000_000
HOSTILE = [
    b'{"title": "ok", "timestamp": NaN}',
    b'{"title": "ok", "extra": 1e400}',
    b'{"title": "\xff\xfe"}',
    b'{"title": "lone \\ud800"}',
    b"{not json",
]


def raw_post(path: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


def status_of(response_head: bytes) -> int:
    return int(response_head.split(b" ", 2)[1])


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def connect(port: int):
    return await asyncio.open_connection("127.0.0.1", port)


async def back_to_back(port: int, request: bytes, deadline: float, pause: float = 0.0) -> dict:
    """Valid requests on one keep-alive connection until the deadline: count and errors."""
    done = errors = 0
    conn = await connect(port)
    while time.perf_counter() < deadline:
        try:
            status = await asyncio.wait_for(exchange(*conn, request), timeout=30)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            errors += 1
            conn = await connect(port)
            continue
        done += 1
        errors += status != 200
        await asyncio.sleep(pause)
    conn[1].close()
    return {"requests": done, "errors": errors}


async def big_bodies(port: int, deadline: float) -> Counter:
    """A 10 MB body every 0.5 s; what came back (a 413 is expected)."""
    got: Counter = Counter()
    chunk = b"x" * 65536
    head = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {BIG_BODY_BYTES}\r\n\r\n").encode()  # fmt: skip
    while time.perf_counter() < deadline:
        reader, writer = await connect(port)

        async def send_all(writer=writer) -> None:
            writer.write(head)
            sent = 0
            while sent < BIG_BODY_BYTES:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)

        sender = asyncio.create_task(send_all())
        try:
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
            got[str(status_of(answer))] += 1
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
            got[f"no answer ({type(error).__name__})"] += 1
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        writer.close()
        await asyncio.sleep(0.5)
    return got


async def hostile_bodies(port: int, deadline: float) -> Counter:
    got: Counter = Counter()
    conn = await connect(port)
    i = 0
    while time.perf_counter() < deadline:
        body = HOSTILE[i % len(HOSTILE)]
        i += 1
        request = raw_post("/how_many_upvotes", body)
        try:
            got[str(await asyncio.wait_for(exchange(*conn, request), timeout=30))] += 1
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
            got[f"broken connection ({type(error).__name__})"] += 1
            conn = await connect(port)
        await asyncio.sleep(0.02)
    return got


async def run(args: argparse.Namespace, port: int, pid: int) -> dict:
    predict = request_bytes("POST", "/how_many_upvotes", STORY)
    batch_story = {"title": STORY["title"], "by": "pg", "time": STORY["timestamp"]}
    batch = request_bytes("POST", "/predict", {"stories": [batch_story] * 256})
    logs = request_bytes("GET", "/logs?limit=1000")
    metrics = request_bytes("GET", "/metrics")
    # warm-up, and enough records for /logs to return its 1000
    warm = time.perf_counter() + 3
    await asyncio.gather(back_to_back(port, predict, warm), back_to_back(port, batch, warm))
    rss_before = peak_rss_mb(pid)
    deadline = time.perf_counter() + args.duration
    results = await asyncio.gather(
        open_loop(port, predict, args.rate, deadline - time.perf_counter()),
        back_to_back(port, batch, deadline),
        back_to_back(port, logs, deadline),
        back_to_back(port, logs, deadline),
        back_to_back(port, metrics, deadline, pause=1.0),
        big_bodies(port, deadline),
        hostile_bodies(port, deadline),
    )
    hot, batches, logs_a, logs_b, scrapes, big, hostile = results
    valid_errors = hot["errors"] + batches["errors"] + logs_a["errors"] + logs_b["errors"]
    return {
        f"how_many_upvotes_{args.rate:g}rps": hot,
        "predict_256_batch": batches,
        "logs_limit_1000": {
            "requests": logs_a["requests"] + logs_b["requests"],
            "errors": logs_a["errors"] + logs_b["errors"],
        },
        "metrics": scrapes,
        "errors_on_valid_requests": valid_errors + scrapes["errors"],
        "big_10mb_bodies": dict(big),
        "hostile_json_bodies": dict(hostile),
        "server_peak_rss_mb": peak_rss_mb(pid),
        "server_peak_rss_mb_after_warmup": rss_before,
    }


def main() -> None:
    parser = data_dir_parser(__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60, help="seconds of mixed load")
    parser.add_argument("--rate", type=float, default=200, help="/how_many_upvotes per second")
    args = parser.parse_args()
    results = against_server(args.data_dir, lambda port, pid: run(args, port, pid))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
