"""Jobs-service benchmark: what the queue costs, how two workers share work, and kills survived.

Runs the embedded PostgreSQL of `upvote jobs serve` (src/upvote/jobs/embedded.py) in a fresh
data dir and real `upvote jobs worker` processes; every figure is compared with an anchor
measured in the same run:

  overhead    one job by URL (a loopback HTTP server, allowed by UPVOTE_JOBS_ALLOW_HOSTS) on the
              whole corpus, submit -> succeeded, against `upvote embed train` on the same file
              with the same options (1 epoch, 2 threads). Target: <= 1.15x.
  throughput  8 jobs of 1M-word slices on 2 workers x 1 thread, first submit -> last finish,
              against the ideal: the sum of the same jobs run one at a time on one worker, / 2.
              Target: <= 1.2x.
  chaos       40 small jobs on 2 workers while 20 SIGKILLs hit a random worker at random times
              (each replaced at once). Checks: every job succeeded (none lost), and no job ran
              twice at once: each attempt logs its start and end with the worker's pid
              (queue.run_job); an attempt of a killed worker ends at its kill; the attempts of one
              job must not overlap, and their count must match the job's `attempts`.

    .venv/bin/python benchmarks/jobs_service.py            # full: about 6 minutes on 2 cores
    .venv/bin/python benchmarks/jobs_service.py --quick    # tiny corpus: checks it runs (~1 min)
    .venv/bin/python benchmarks/jobs_service.py --only chaos --kills 30
"""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import itertools
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from upvote.embeddings.corpus import iter_documents
from upvote.jobs.embedded import EmbeddedPostgres
from upvote.jobs.queue import apply_schemas, make_app, submit
from upvote.jobs.store import FINAL, State, connect, get_job

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "text" / "enwiki2015_text8style_first100M.txt.gz"
HEARTBEAT_S, STALLED_AFTER_S = 0.5, 3.0
ATTEMPT = re.compile(
    r"^(\S+ \S+) upvote\.jobs\.queue job (\d+) attempt (\d+) (started|ended) by \S+:(\d+)"
)


def write_slices(corpus: Path, words: int, count: int, folder: Path) -> list[Path]:
    """`count` consecutive gzip slices of `words` words each, in 10,000-word lines."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = (t for doc in iter_documents(str(corpus)) for t in doc.split())
    paths = []
    for i in range(count):
        chunk = list(itertools.islice(tokens, words))
        if len(chunk) < words:
            raise SystemExit(f"{corpus} has fewer than {words * count} words")
        path = folder / f"slice{i}.txt.gz"
        with gzip.open(path, "wt") as out:
            for start in range(0, len(chunk), 10_000):
                out.write(" ".join(chunk[start : start + 10_000]) + "\n")
        paths.append(path)
    return paths


class Bench:
    """The PostgreSQL, the environment of every `upvote` process, the workers running."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.pg = EmbeddedPostgres.at(data / "jobs" / "postgres").start()
        self.dsn = self.pg.dsn
        self.app = make_app(self.dsn, data / "jobs")
        apply_schemas(self.app, self.dsn)
        self.env = os.environ | {
            "UPVOTE_DATA_DIR": str(data), "UPVOTE_JOBS_DATABASE_URL": self.dsn,
            "UPVOTE_TRACKING": "0", "UPVOTE_JOBS_ALLOW_HOSTS": "127.0.0.1",
            "PYTHONPATH": str(ROOT / "src"),
        }  # fmt: skip
        self.workers: list[subprocess.Popen] = []
        self.logs = itertools.count()

    def start_worker(self, threads: int) -> subprocess.Popen:
        log = open(self.data / f"worker{next(self.logs)}.log", "w")  # noqa: SIM115
        worker = subprocess.Popen(
            [sys.executable, "-m", "upvote", "jobs", "worker", "--threads", str(threads),
             "--heartbeat", str(HEARTBEAT_S), "--stalled-after", str(STALLED_AFTER_S)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
        self.workers = []

    def submit(self, corpus: str, **options) -> int:
        return submit(self.app, self.dsn, corpus, options)

    def wait(self, job_ids: list[int], timeout: float) -> list:
        deadline = time.monotonic() + timeout
        with connect(self.dsn) as conn:
            while time.monotonic() < deadline:
                jobs = [get_job(conn, i) for i in job_ids]
                if all(job.state in FINAL for job in jobs):
                    failed = [(j.id, j.error) for j in jobs if j.state is not State.succeeded]
                    if failed:
                        raise SystemExit(f"jobs failed: {failed}")
                    return jobs
                time.sleep(0.2)
        raise SystemExit(f"timed out after {timeout:.0f} s waiting for jobs {job_ids}")

    def close(self) -> None:
        self.stop_workers()
        self.pg.stop()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve_folder(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def seconds(job) -> float:
    return (job.finished - job.created).total_seconds()


def overhead(bench: Bench, corpus: Path, repeat: int) -> None:
    """Anchor and job alternate ``repeat`` times (this VM's timings swing by +-20% from one run
    to the next); each pair's ratio is printed, and the median decides."""
    server, url = serve_folder(corpus.parent)
    ratios = []
    try:
        bench.start_worker(threads=2)
        time.sleep(3)  # the worker is up and idle, as in service
        for round_ in range(repeat):
            anchor_out = bench.data / f"anchor{round_}"
            t0 = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "upvote", "embed", "train", str(corpus), "--out",
                 str(anchor_out), "--epochs", "1", "--threads", "2"],
                env=bench.env, capture_output=True, text=True,
            )  # fmt: skip
            anchor = time.perf_counter() - t0
            if done.returncode != 0:
                raise SystemExit(f"upvote embed train failed: {done.stderr[-2000:]}")
            shutil.rmtree(anchor_out, ignore_errors=True)
            job_id = bench.submit(f"{url}/{corpus.name}", epochs=1)
            job = bench.wait([job_id], timeout=max(20 * anchor, 300))[0]
            ratios.append(seconds(job) / anchor)
            print(f"overhead    embed train {anchor:8.1f} s   job by URL {seconds(job):8.1f} s   "
                  f"ratio {ratios[-1]:.3f}", flush=True)  # fmt: skip
    finally:
        bench.stop_workers()
        server.shutdown()
    median = statistics.median(ratios)
    print(f"overhead    median of {repeat}: {median:.3f} (target <= 1.15) "
          f"{'OK' if median <= 1.15 else 'MISSED'}")  # fmt: skip


def throughput(bench: Bench, slices: list[Path]) -> None:
    bench.start_worker(threads=1)
    singles = []
    for path in slices:  # one at a time on one worker: the anchor
        singles.append(seconds(bench.wait([bench.submit(str(path))], timeout=3600)[0]))
    bench.stop_workers()
    bench.start_worker(threads=1)
    bench.start_worker(threads=1)
    time.sleep(3)
    ids = [bench.submit(str(path)) for path in slices]
    jobs = bench.wait(ids, timeout=3600)
    bench.stop_workers()
    makespan = (max(j.finished for j in jobs) - min(j.created for j in jobs)).total_seconds()
    ideal = sum(singles) / 2
    ratio = makespan / ideal
    print(f"throughput  {len(slices)} jobs: one at a time {sum(singles):8.1f} s   "
          f"2 workers {makespan:8.1f} s   ideal {ideal:8.1f} s   ratio {ratio:.3f} "
          f"(target <= 1.2) {'OK' if ratio <= 1.2 else 'MISSED'}")  # fmt: skip


def attempts_from_logs(data: Path, kills: dict[int, datetime]) -> dict[int, list]:
    """job id -> [(start, end, pid)] of every attempt the workers logged."""
    runs: dict[tuple[int, int, int], list] = {}
    for log in data.glob("worker*.log"):
        for line in log.read_text().splitlines():
            match = ATTEMPT.match(line)
            if match:
                stamp, job, attempt, what, pid = match.groups()
                when = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
                runs.setdefault((int(job), int(attempt), int(pid)), [None, None])[
                    what == "ended"
                ] = when
    by_job: dict[int, list] = {}
    for (job, _, pid), (start, end) in runs.items():
        by_job.setdefault(job, []).append((start, end or kills.get(pid, datetime.max), pid))
    return by_job


def chaos(bench: Bench, slices: list[Path], jobs: int, kills: int, epochs: int) -> None:
    rng = random.Random(0)
    for _ in range(2):
        bench.start_worker(threads=1)
    ids = [bench.submit(str(slices[i % len(slices)]), epochs=epochs) for i in range(jobs)]
    killed: dict[int, datetime] = {}
    with connect(bench.dsn) as conn:
        while len(killed) < kills:
            time.sleep(rng.uniform(0.5, 3.0))
            if all(get_job(conn, i).state in FINAL for i in ids):
                break
            live = [w for w in bench.workers if w.poll() is None]
            victim = rng.choice(live)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed[victim.pid] = datetime.now()
            bench.start_worker(threads=1)
    final = bench.wait(ids, timeout=3600)
    bench.stop_workers()
    runs = attempts_from_logs(bench.data, killed)
    overlaps = []
    for job_id, attempts in runs.items():
        attempts.sort()
        overlaps += [(job_id, a[2], b[2]) for a, b in itertools.pairwise(attempts) if b[0] < a[1]]
    mismatched = [j.id for j in final if len(runs.get(j.id, [])) != j.attempts]
    retried = sum(1 for j in final if j.attempts > 1)
    ok = not overlaps and not mismatched
    print(f"chaos       {jobs} jobs, {len(killed)} SIGKILLs: all succeeded, {retried} retried, "
          f"{sum(j.attempts for j in final)} attempts; concurrent duplicates {len(overlaps)}, "
          f"attempt counts off {len(mismatched)} {'OK' if ok else 'FAILED'}")  # fmt: skip
    if not ok:
        raise SystemExit(f"duplicates {overlaps[:10]}, attempts off {mismatched[:10]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--quick", action="store_true", help="tiny corpus: checks it runs")
    parser.add_argument("--only", choices=["overhead", "throughput", "chaos"])
    parser.add_argument("--kills", type=int, default=None, help="SIGKILLs of the chaos part")
    parser.add_argument("--chaos-words", type=int, default=None, help="words per chaos job")
    parser.add_argument("--repeat", type=int, default=5, help="overhead: anchor/job pairs")
    args = parser.parse_args()
    words, jobs, kills = (100_000, 6, 3) if args.quick else (1_000_000, 40, 20)
    kills = args.kills if args.kills is not None else kills
    data = Path(tempfile.mkdtemp(prefix="upvote-jobs-bench-"))
    data.chmod(0o755)  # as root the server runs as user postgres, which must reach it
    bench = Bench(data)
    try:
        slices = write_slices(args.corpus, words, 8, data / "slices")
        if args.only in (None, "overhead"):
            whole = args.corpus
            if args.quick:
                whole = data / "whole" / "whole.txt.gz"
                whole.parent.mkdir()
                shutil.copy(slices[0], whole)
            overhead(bench, whole, 1 if args.quick else args.repeat)
        if args.only in (None, "throughput"):
            throughput(bench, slices)
        if args.only in (None, "chaos"):
            # a few seconds of training each (3 epochs), so kills land mid-job
            chaos_words = args.chaos_words or (words if args.quick else words * 2 // 5)
            small = write_slices(args.corpus, chaos_words, 8, data / "small")
            chaos(bench, small, jobs, kills, epochs=3)
    finally:
        bench.close()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
