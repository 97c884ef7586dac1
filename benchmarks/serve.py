"""Serving benchmark: /how_many_upvotes against the no-op /ping, on a real `upvote serve`.

The server runs in its own process (uvicorn, one worker); this process drives the load with a
minimal asyncio HTTP/1.1 keep-alive client (far cheaper per request than httpx, so the client is
not the bottleneck). Two phases, both against 127.0.0.1 only and bounded in time:

Each phase also reports the server's CPU milliseconds per request (from /proc), a cost that
depends less on what else the machine is running than the latencies do.

1. closed loop: N connections send back-to-back for D seconds on /ping and D seconds on
   /how_many_upvotes, in alternating slices (``--slices``, 1 s each by default: this VM's speed
   drifts by tens of percent within seconds, and measuring one endpoint after the other put
   that drift into their ratio) -> throughput, p50/p99, errors, and the ratio of the two;
2. open loop: a fixed rate (200 req/s) on /how_many_upvotes for D seconds; latency counts from
   the scheduled send time, so a stalled server cannot hide its queueing (no coordinated omission).

    python benchmarks/serve.py --data-dir DIR [--duration 10] [--slices 10] [--rate 200]

DIR must hold a trained model (``UPVOTE_DATA_DIR=DIR upvote train``).
"""

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

STORY = {"author": "pg", "title": "Show HN: I wrote word2vec from scratch in PyTorch",
         "timestamp": "2024-05-01T12:00:00Z"}  # fmt: skip


def request_bytes(method: str, path: str, body: dict | None = None) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(payload)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    return head.encode() + b"\r\n" + payload


async def exchange(reader, writer, request: bytes) -> int:
    """Send one request on a keep-alive connection and read the whole response; its status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(v) for k, _, v in (ln.partition(":") for ln in lines[1:])
                  if k.lower() == "content-length")  # fmt: skip
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def load_slice(port: int, request: bytes, connections: int, duration: float) -> tuple:
    """N connections send back-to-back for ``duration`` s: (latencies, errors, seconds)."""
    latencies: list[float] = []
    errors = 0

    async def worker(deadline: float) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                status = await exchange(reader, writer, request)
            except (OSError, asyncio.IncompleteReadError):
                errors += 1
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            latencies.append(time.perf_counter() - start)
            errors += status != 200
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(start + duration) for _ in range(connections)))
    return latencies, errors, time.perf_counter() - start


async def closed_loop(port: int, request: bytes, connections: int, duration: float) -> dict:
    return summarize(*await load_slice(port, request, connections, duration))


async def interleaved(
    port: int, pid: int, requests: dict[str, bytes], connections: int, duration: float,
    slices: int,
) -> dict[str, dict]:  # fmt: skip
    """Closed loops on each request in turn, ``slices`` times, ``duration`` s per request in
    all: the machine's speed drifts by tens of percent over seconds on a shared VM, and one
    request measured after the other would carry that drift into their ratio. Per request: the
    summary of all its slices and the server's CPU ms per answered request."""
    raw = {name: ([], 0, 0.0, 0.0) for name in requests}
    for _ in range(slices):
        for name, request in requests.items():
            before = cpu_seconds(pid)
            latencies, errors, seconds = await load_slice(
                port, request, connections, duration / slices
            )
            done, failed, spent, cpu = raw[name]
            done.extend(latencies)
            raw[name] = (done, failed + errors, spent + seconds, cpu + cpu_seconds(pid) - before)
    results = {}
    for name, (latencies, errors, seconds, cpu) in raw.items():
        results[name] = summarize(latencies, errors, seconds)
        results[name]["server_cpu_ms_per_request"] = round(1000 * cpu / max(len(latencies), 1), 3)
    return results


async def open_loop(port: int, request: bytes, rate: float, duration: float) -> dict:
    idle: asyncio.Queue = asyncio.Queue()
    latencies: list[float] = []
    errors = 0

    async def one(scheduled: float) -> None:
        nonlocal errors
        conn = idle.get_nowait() if not idle.empty() else None
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", port)
            status = await asyncio.wait_for(exchange(*conn, request), timeout=30)
        except (OSError, asyncio.IncompleteReadError, TimeoutError):  # a stall is an error
            errors += 1
            return
        latencies.append(time.perf_counter() - scheduled)
        errors += status != 200
        idle.put_nowait(conn)

    start = time.perf_counter()
    tasks = []
    for i in range(int(rate * duration)):
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    return summarize(latencies, errors, time.perf_counter() - start)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the server process has used: load-independent cost."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(pid: int, phase) -> dict:
    """Run a load phase and add the server's CPU milliseconds per answered request."""
    before = cpu_seconds(pid)
    result = await phase
    result["server_cpu_ms_per_request"] = round(
        1000 * (cpu_seconds(pid) - before) / max(result["requests"], 1), 3
    )
    return result


def summarize(latencies: list[float], errors: int, seconds: float) -> dict:
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(seconds, 2),
        "throughput_rps": round(len(latencies) / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path, port: int, log_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "UPVOTE_DATA_DIR": str(data_dir), "UPVOTE_LOG_DIR": str(log_dir)}
    server = subprocess.Popen(
        [sys.executable, "-m", "upvote", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return server
        except OSError:
            if server.poll() is not None:
                sys.exit("upvote serve exited during start-up (is there a trained model?)")
            time.sleep(0.3)
    server.terminate()
    sys.exit("upvote serve did not become healthy in 120 s")


async def run(args: argparse.Namespace, port: int, pid: int) -> dict:
    ping = request_bytes("GET", "/ping")
    predict = request_bytes("POST", "/how_many_upvotes", STORY)
    await closed_loop(port, predict, args.connections, 2)  # warm-up (JIT, caches, connections)
    both = {"noop": ping, "model": predict}
    loops = await interleaved(port, pid, both, args.connections, args.duration, args.slices)
    noop, model = loops["noop"], loops["model"]
    fixed = await measured(pid, open_loop(port, predict, args.rate, args.rate_duration))
    return {
        "noop_ping": noop,
        "how_many_upvotes": model,
        "ratio_to_noop": round(model["throughput_rps"] / noop["throughput_rps"], 3),
        f"fixed_rate_{args.rate:g}rps": fixed,
    }


def data_dir_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every serving benchmark takes: the trained model's UPVOTE_DATA_DIR."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("UPVOTE_DATA_DIR"),
                        required="UPVOTE_DATA_DIR" not in os.environ,
                        help="UPVOTE_DATA_DIR with a trained model")  # fmt: skip
    return parser


def against_server(data_dir: Path, load) -> dict:
    """Start `upvote serve` on a free port, run ``load(port, pid)`` (a coroutine) against it,
    stop the server; the results with the machine and its load after the run."""
    port = free_port()
    with tempfile.TemporaryDirectory() as log_dir:
        server = start_server(data_dir, port, Path(log_dir))
        try:
            results = asyncio.run(load(port, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=10)
    results["machine"] = f"{platform.node()}: {os.cpu_count()} CPUs, {platform.platform()}"
    results["load_average_1m_after"] = round(os.getloadavg()[0], 2)  # other work on the machine
    return results


def main() -> None:
    parser = data_dir_parser(__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10, help="seconds per closed-loop run")
    parser.add_argument("--connections", type=int, default=8, help="closed-loop connections")
    parser.add_argument("--slices", type=int, default=10, help="alternations of the closed loops")
    parser.add_argument("--rate", type=float, default=200, help="open-loop requests per second")
    parser.add_argument("--rate-duration", type=float, default=60, help="open-loop seconds")
    args = parser.parse_args()
    results = against_server(args.data_dir, lambda port, pid: run(args, port, pid))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
