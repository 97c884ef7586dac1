"""Ingest benchmark: `upvote data pull` from PostgreSQL vs a bare `COPY (SELECT ...) TO STDOUT`.

Starts a throw-away PostgreSQL (or uses --dsn), fills hacker_news.items with --rows realistic
stories generated inside the server from the shipped sample (ids, times, scores and titles
perturbed; some comments, dead and -1 rows mixed in, as in production), then in the same run times:

  copy  COPY (<the exact SELECT the pull runs>) TO STDOUT, bytes read and dropped by psycopg
  pull  `python -m upvote data pull` in a subprocess: stream, clean, write Parquet; its peak RSS

and, with --incremental N, an incremental pull against a fresh pull of the same rows: the oldest N
stories are pulled first, then the rest incrementally (deduplicated against the N already there),
and the rest again into an empty dataset (`--since` the same time); the ratio of the two is
what a growing dataset costs (target <= 1.5x).

    .venv/bin/python benchmarks/ingest.py                # 1M rows, ~2-3 minutes on 2 cores
    .venv/bin/python benchmarks/ingest.py --rows 100000  # quick look
    .venv/bin/python benchmarks/ingest.py --rows 1550000 --incremental 700000 --only-incremental
    .venv/bin/python benchmarks/ingest.py --file-mb 1024   # a 1 GB CSV and JSON-lines file instead

With --file-mb, no database: a CSV and a JSON-lines file of that size are written from the shipped
sample (ids shifted per copy, so every row is a new story) and `upvote data pull --source FILE`
is timed on each, with its peak RSS (target: under 1 GB for a 1 GB file).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data"))  # the test suite's PostgreSQL helper

from pgserver import PostgresServer, insert_items, sample_story_rows  # noqa: E402

from upvote.data.sources import Query, story_sql  # noqa: E402

SEED_SQL = """
CREATE TEMP TABLE seed AS SELECT row_number() OVER (ORDER BY id) AS rn, * FROM hacker_news.items
"""
GENERATE_SQL = """
INSERT INTO hacker_news.items (id, dead, type, by, "time", url, score, title, descendants)
SELECT
    m.max_id + (k - 1) * m.n + s.rn,
    CASE WHEN random() < 0.03 THEN true END,                         -- about 3 in 100 dead
    CASE WHEN random() < 0.05 THEN 'comment' ELSE 'story' END,       -- a few non-stories
    s.by,
    least(greatest(s.time + (random() - 0.5) * interval '60 days', '2006-10-09'),
          localtimestamp - interval '1 day'),
    s.url,
    CASE WHEN random() < 0.001 THEN -1
         ELSE greatest(0, round(s.score * (0.5 + random())))::int END,
    CASE k %% 3 WHEN 0 THEN s.title WHEN 1 THEN initcap(s.title)
         ELSE left(s.title || ' (' || (k %% 50) || ')', 255) END,
    greatest(0, round(s.descendants * (0.5 + random())))::int
FROM seed s,
     (SELECT max(id) AS max_id, count(*) AS n FROM seed) m,
     generate_series(1, %(copies)s) k
WHERE s.time IS NOT NULL
"""


def generate(dsn: str, rows: int) -> None:
    """Load the shipped sample, then multiply it inside the server to at least ``rows`` stories."""
    stories = pd.read_parquet(ROOT / "src/upvote/data/sample/stories.parquet")
    seed = sample_story_rows(stories)
    insert_items(dsn, seed)
    copies = -(-int(rows * 1.15) // len(seed))  # headroom for the dead/comment/-1 rows
    with psycopg.connect(dsn) as conn:
        conn.execute(SEED_SQL)
        conn.execute(GENERATE_SQL, {"copies": copies})
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE hacker_news.items")
        total = conn.execute("SELECT count(*) FROM hacker_news.items").fetchone()[0]
    print(f"generated {total:,} items ({copies} perturbed copies of {len(seed):,} sample stories)")


def time_copy(dsn: str, query: Query) -> tuple[float, int]:
    """Seconds and bytes of a text COPY of the pull's own SELECT."""
    with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
        start = time.perf_counter()
        size = 0
        statement = psycopg.sql.SQL("COPY ({}) TO STDOUT").format(story_sql(query))
        with cursor.copy(statement) as copy:
            for chunk in copy:
                size += len(chunk)
        return time.perf_counter() - start, size


ENTRY_POINTS = {
    "upvote data pull": ["-m", "upvote", "data"],  # what users run: imports every stage's CLI
    "python -m upvote.data.cli pull": ["-m", "upvote.data.cli"],  # the data stage alone
}


def time_pull(dsn: str, rows: int, batch_size: int, entry: list[str]) -> tuple[float, float, str]:
    """Seconds, peak RSS (MB) and output of a pull run as a child process."""
    with tempfile.TemporaryDirectory() as data_dir:
        command = [sys.executable, *entry, "pull", "--source", dsn,
                   "--limit", str(rows), "--batch-size", str(batch_size)]  # fmt: skip
        env = {**os.environ, "UPVOTE_DATA_DIR": data_dir}
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        if status != 0:
            raise SystemExit(f"pull failed:\n{output}")
        return seconds, usage.ru_maxrss / 1024, output


def run_pull(dsn: str, data_dir: str, *options: str) -> tuple[float, str]:
    """The pull's own seconds ("pulled in") and output of `python -m upvote.data.cli pull`."""
    command = [sys.executable, "-m", "upvote.data.cli", "pull", "--source", dsn, *options]
    env = {**os.environ, "UPVOTE_DATA_DIR": data_dir}
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pull failed:\n{done.stdout}{done.stderr}")
    return float(re.search(r"pulled in ([\d.]+) s", done.stdout).group(1)), done.stdout


def kept(output: str) -> int:
    return int(re.search(r"rows kept\s+([\d,]+)", output).group(1).replace(",", ""))


def time_incremental(dsn: str, existing: int, batch_size: int) -> None:
    """Incremental pull of everything after the oldest ``existing`` stories vs a fresh pull."""
    from upvote.data.dataset import newest_time

    batch = ("--batch-size", str(batch_size))
    with tempfile.TemporaryDirectory() as grown, tempfile.TemporaryDirectory() as empty:
        first, _ = run_pull(dsn, grown, "--limit", str(existing), *batch)
        since = newest_time(Path(grown) / "datasets" / "stories").isoformat()
        incremental, inc_out = run_pull(dsn, grown, *batch)  # since: the newest time pulled
        fresh, fresh_out = run_pull(dsn, empty, "--since", since, *batch)
    print(f"incremental: {kept(inc_out):,} rows onto {existing:,}: {incremental:.2f} s; "
          f"fresh pull of that window ({kept(fresh_out):,} rows): {fresh:.2f} s; "
          f"ratio {incremental / fresh:.2f}x (target <= 1.5x); first {first:.2f} s")  # fmt: skip


def write_file(path: Path, megabytes: int) -> int:
    """A CSV or JSON-lines file of about ``megabytes`` MB of real stories; its row count. The
    sample's id-less rows repeat in every copy: the pull drops those copies as duplicates."""
    from upvote.data.sources import read_file

    sample = read_file(ROOT / "src" / "upvote" / "data" / "sample" / "stories.parquet")
    sample = sample[["id", "title", "url", "by", "time", "score", "descendants"]]
    step, rows, written = int(sample["id"].max()) + 1, 0, 0
    with open(path, "w", encoding="utf-8") as f:
        for copy in range(10**6):
            chunk = sample.assign(id=sample["id"] + copy * step)
            if path.suffix == ".csv":
                text = chunk.to_csv(index=False, header=copy == 0, date_format="%Y-%m-%dT%H:%M:%S")
            else:
                text = chunk.to_json(orient="records", lines=True, date_format="iso")
            f.write(text)
            written, rows = written + len(text.encode()), rows + len(chunk)
            if written >= megabytes * 2**20:
                return rows
    return rows


def time_file_pulls(megabytes: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for suffix in (".csv", ".jsonl"):
            path = Path(folder) / f"stories{suffix}"
            rows = write_file(path, megabytes)
            size = path.stat().st_size / 2**20
            seconds, peak_mb, output = time_pull(
                str(path), rows, 25_000, ENTRY_POINTS["upvote data pull"]
            )
            path.unlink()
            print(f"pull of a {size:,.0f} MB {suffix[1:]} file ({rows:,} rows): {seconds:.1f} s, "
                  f"{size / seconds:.1f} MB/s, peak RSS {peak_mb:,.0f} MB; "
                  f"kept {kept(output):,}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="stories to pull")
    parser.add_argument("--batch-size", type=int, default=25_000)
    parser.add_argument("--dsn", help="use this database (already loaded) instead of a new one")
    parser.add_argument(
        "--incremental",
        type=int,
        metavar="N",
        help="also time an incremental pull onto the oldest N stories",
    )
    parser.add_argument("--only-incremental", action="store_true",
                        help="skip the COPY and entry-point comparisons")  # fmt: skip
    parser.add_argument("--file-mb", type=int, help="time pulls of a file this big instead")
    args = parser.parse_args()
    if args.file_mb:
        time_file_pulls(args.file_mb)
        return

    server = None if args.dsn else PostgresServer.start()
    try:
        dsn = args.dsn or server.dsn
        if server is not None:
            start = time.perf_counter()
            generate(dsn, args.rows)
            print(f"generation took {time.perf_counter() - start:.1f} s")
        if args.incremental:
            time_incremental(dsn, args.incremental, args.batch_size)
        if args.only_incremental:
            return
        query = Query(limit=args.rows)
        copies = [time_copy(dsn, query)]
        pulls = {}
        for name, entry in ENTRY_POINTS.items():
            pulls[name] = time_pull(dsn, args.rows, args.batch_size, entry)
            copies.append(time_copy(dsn, query))
        copy_seconds = min(seconds for seconds, _ in copies)  # the fastest: a conservative anchor
        print(next(iter(pulls.values()))[2].strip())
        runs = ", ".join(f"{seconds:.2f}" for seconds, _ in copies)
        print(f"COPY TO STDOUT: {args.rows / copy_seconds:>9,.0f} rows/s ({copy_seconds:.2f} s, "
              f"{copies[0][1] / 1e6:.0f} MB of text; runs {runs} s)")  # fmt: skip
        for name, (seconds, peak_mb, output) in pulls.items():
            inside = float(re.search(r"pulled in ([\d.]+) s", output).group(1))
            print(f"{name}: {args.rows / seconds:,.0f} rows/s over {seconds:.2f} s wall "
                  f"(process start included) = {copy_seconds / seconds:.2f}x COPY; "
                  f"{args.rows / inside:,.0f} rows/s over the pull's own {inside:.2f} s = "
                  f"{copy_seconds / inside:.2f}x COPY (target >= 0.5x); "
                  f"peak RSS {peak_mb:.0f} MB (target < 300 MB)")  # fmt: skip
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
