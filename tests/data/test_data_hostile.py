"""Hostile and broken input never crashes, leaks or stalls `upvote data pull` (and SQL corpora).

Values no column can hold are dropped and counted, files are read in bounded memory, passwords
never reach the output, and a locked table is a one-line error after a timeout.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hn_edge_cases import EDGE_BASE
from pgserver import insert_items
from typer.testing import CliRunner

from upvote.cli import app
from upvote.data import load_stories
from upvote.data.dataset import KeySet, default_dataset_dir, newest_time, parts, read_dataset
from upvote.data.schema import arrow_schema
from upvote.redact import redact


def pull(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, ["data", "pull", *args], env=env)


def reported(output: str, counter: str) -> int:
    match = re.search(rf"^\s*(?:dropped |fixed )?{counter}\s+([\d,]+)", output, re.M)
    return int(match.group(1).replace(",", "")) if match else 0


# --- 7. values beyond what a column can hold --------------------------------------------------


def test_postgres_infinite_and_out_of_range_times_are_dropped_and_counted(pg_dsn, sample_stories):
    with psycopg.connect(pg_dsn) as conn:
        for offset, when in enumerate(
            ["infinity", "-infinity", "0001-01-01 00:00:00", "9999-12-31 23:59:59",
             "0044-03-15 00:00:00 BC"], start=300
        ):  # fmt: skip
            conn.execute(
                "INSERT INTO hacker_news.items (id, type, title, by, time, score) "
                "VALUES (%s, 'story', %s, 'x', %s::timestamp, 1)",
                (EDGE_BASE + offset, f"Bad time {when}", when),
            )
    result = pull("--source", pg_dsn)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert reported(result.output, "out_of_range") == 5
    assert "infinite time or outside 1677..2262" in result.output  # the reason, on the same line
    ids = set(load_stories()["id"])
    assert not ids & {EDGE_BASE + offset for offset in range(300, 305)}
    # the incremental cursor is the newest real time, never 'infinity' or 9999
    cursor = newest_time(default_dataset_dir())
    assert cursor is not None and cursor.year < 2100
    newest = sample_stories["time"].max().to_pydatetime()
    later = {"id": EDGE_BASE + 400, "type": "story", "title": "Later", "by": "n",
             "time": newest + timedelta(days=1), "score": 2}  # fmt: skip
    insert_items(pg_dsn, [later])
    again = pull("--source", pg_dsn)  # the bad rows are fetched again and dropped again
    assert again.exit_code == 0, again.output
    assert EDGE_BASE + 400 in set(load_stories()["id"])
    assert reported(again.output, "out_of_range") == 2  # infinity and 9999 are >= the cursor


HUGE = "99999999999999999999"
OUT_OF_RANGE_ROWS = [
    {"id": "1", "title": "fine", "score": "3", "time": "1400000000"},
    {"id": "2", "title": "infinite score", "score": "1e999", "time": "1400000001"},
    {"id": HUGE, "title": "id beyond int64", "score": "1", "time": "1400000002"},
    {"id": str(2**63), "title": "id 2**63", "score": "1", "time": "1400000003"},
    {"id": "5", "title": "score beyond int64", "score": str(2**64), "time": "1400000004"},
    {"id": "6", "title": "time 1e20", "score": "1", "time": "1e20"},
]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_file_numbers_beyond_int64_or_infinite_are_dropped_and_counted(tmp_path, suffix):
    path = tmp_path / f"hostile{suffix}"
    if suffix == ".csv":
        pd.DataFrame(OUT_OF_RANGE_ROWS).to_csv(path, index=False)
    else:  # JSON numbers, not strings: 1e999 is parsed as inf, 2**64 as a Python int
        rows = [{k: (v if k == "title" else json.loads(v)) for k, v in r.items()}
                for r in OUT_OF_RANGE_ROWS]  # fmt: skip
        path.write_text("\n".join(json.dumps(r) for r in rows).replace("Infinity", "1e999"))
    result = pull("--source", str(path))
    assert result.exit_code == 0, result.output
    assert reported(result.output, "out_of_range") == 5
    assert list(load_stories()["id"]) == [1]


def test_file_times_outside_pandas_range_are_dropped_and_counted(tmp_path):
    path = tmp_path / "times.csv"
    pd.DataFrame(
        {
            "id": ["1", "2", "3", "4", "5"],
            "title": ["fine", "year 1", "year 9999", "infinity", "garbage time"],
            "time": ["2014-05-25 10:00:00", "0001-01-01 00:00:00", "9999-12-31", "infinity",
                     "garbage"],
        }
    ).to_csv(path, index=False)  # fmt: skip
    result = pull("--source", str(path))
    assert result.exit_code == 0, result.output
    assert reported(result.output, "out_of_range") == 3
    assert reported(result.output, "bad_time") == 1  # garbage: kept, undated
    assert sorted(load_stories()["id"]) == [1, 5]


def test_parquet_uint64_ids_and_year_one_timestamps_are_dropped(tmp_path):
    path = tmp_path / "typed.parquet"
    table = pa.table(
        {
            "id": pa.array([1, 2**63 + 5, 3], pa.uint64()),
            "title": ["fine", "huge id", "year 1"],
            "time": pa.array(
                [datetime(2014, 5, 25), datetime(2014, 5, 25), datetime(1, 1, 1)],
                pa.timestamp("us"),
            ),
        }
    )
    pq.write_table(table, path)
    result = pull("--source", str(path))
    assert result.exit_code == 0, result.output
    assert reported(result.output, "out_of_range") == 2
    assert list(load_stories()["id"]) == [1]


# --- 6. bounded memory for files, short error messages ----------------------------------------


def test_a_huge_bad_value_is_quoted_short(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text("id,title,score\n1,a,1\n2,b," + "x" * 500_000 + "\n")
    result = pull("--source", str(path))
    assert result.exit_code == 1
    assert "huge.csv: row 2: column 'score': not an integer: 'xxx" in result.output
    assert "(500,000 characters)" in result.output
    assert len(result.output) < 500


def test_a_line_past_the_limit_is_refused_naming_it(tmp_path, monkeypatch):
    from upvote.data import stream

    monkeypatch.setattr(stream, "MAX_LINE_BYTES", 1000)
    bodies = {
        "long.csv": "id,title\n1,a\n2," + "y" * 5000 + "\n3,c\n",
        "long.jsonl": '{"title": "a"}\n{"title": "' + "y" * 5000 + '"}\n',
    }
    for name, body in bodies.items():
        path = tmp_path / name
        path.write_text(body)
        result = pull("--source", str(path))
        assert result.exit_code == 1, result.output
        assert f"{name}: line " in result.output and "1,000-byte limit" in result.output
    assert not parts(default_dataset_dir())


def test_a_parquet_row_group_past_the_limit_is_refused(tmp_path, monkeypatch):
    from upvote.data import stream

    monkeypatch.setattr(stream, "MAX_ROW_GROUP_BYTES", 1000)
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"title": [f"title {i}" for i in range(1000)]}), path)
    result = pull("--source", str(path))
    assert result.exit_code == 1 and "MiB limit" in result.output and "row group 0" in result.output


def test_files_are_read_in_batches_and_dedup_across_them(tmp_path):
    path = tmp_path / "repeats.jsonl"
    rows = [{"id": i % 70, "title": f"t{i % 70}", "time": 1_400_000_000 + i} for i in range(100)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = pull("--source", str(path), "--batch-size", "10", "--limit", "80")
    assert result.exit_code == 0, result.output
    assert pq.ParquetFile(parts(default_dataset_dir())[0]).metadata.num_row_groups > 1
    ids = read_dataset(default_dataset_dir())["id"]
    assert len(ids) == 70 and not ids.duplicated().any()
    assert (
        reported(result.output, "duplicate") == 10 and reported(result.output, "rows read") == 100
    )
    assert reported(result.output, "not_requested") == 20


# The child reports its own high-water mark (VmHWM belongs to the process's memory after exec;
# ru_maxrss would include the pytest process it was forked from).
PEAK_WRAPPER = """
import atexit, runpy, sys
def report():
    peak = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
    print("peak_kb", peak.split()[1], file=sys.stderr)
atexit.register(report)
sys.argv = ["upvote.data.cli", *sys.argv[1:]]
runpy.run_module("upvote.data.cli", run_name="__main__")
"""


def peak_rss_mb(args: list[str], env: dict) -> tuple[float, float, str]:
    """Peak RSS (MB), seconds and output of `python -m upvote.data.cli ARGS` in a child."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *args], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stdout + done.stderr
    peak_kb = int(re.search(r"^peak_kb (\d+)$", done.stderr, re.M).group(1))
    return peak_kb / 1024, seconds, done.stdout


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_large_file_is_pulled_in_bounded_memory(tmp_path, isolated_data_dir, suffix):
    rows = 500_000  # 60 MB of CSV, 85 MB of JSON lines: the whole-file reader took ~10x that
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "id": np.arange(1, rows + 1),
            "title": [f"Show HN: a title of some length, number {i}" for i in range(rows)],
            "url": [f"https://example.com/some/long/path/{i}" for i in range(rows)],
            "by": "someone",
            "time": 1_400_000_000 + np.arange(rows),
            "score": rng.integers(0, 500, rows),
        }
    )
    path = tmp_path / f"big{suffix}"
    if suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_json(path, orient="records", lines=True)
    size_mb = path.stat().st_size / 2**20
    assert size_mb > 50
    env = {**os.environ, "UPVOTE_DATA_DIR": str(isolated_data_dir)}
    peak, seconds, output = peak_rss_mb(["pull", "--source", str(path)], env)
    assert reported(output, "rows kept") == rows
    # imports (pandas, pyarrow) take ~150 MB, a batch of 25,000 rows a few tens of MB: about
    # 220-250 MB whatever the file's size (the whole-file reader: ~500 MB here)
    assert peak < 330, f"peak RSS {peak:.0f} MB for a {size_mb:.0f} MB file"
    assert seconds < 60


# --- 10. dedup against the dataset costs O(batch), not O(dataset) -----------------------------


def test_key_set_membership():
    keys = KeySet(np.array([5, 1, 9], dtype=np.uint64))
    assert keys.contains(np.array([1, 2, 9, 10], dtype=np.uint64)).tolist() == [1, 0, 1, 0]
    for start in range(100, 1000, 100):
        keys.add(np.arange(start, start + 50, dtype=np.uint64))
    assert len(keys.runs) <= 4 and len(keys) == 3 + 9 * 50
    probe = np.array([0, 1, 149, 150, 950, 949], dtype=np.uint64)
    assert keys.contains(probe).tolist() == [0, 1, 1, 0, 0, 1]
    assert KeySet().contains(probe).tolist() == [0] * 6


def test_incremental_pull_costs_about_a_fresh_pull(tmp_path, isolated_data_dir):
    existing = 3_000_000  # ids already pulled; the old check re-sorted them for every batch
    directory = default_dataset_dir()
    directory.mkdir(parents=True)
    schema = arrow_schema()
    columns = {
        name: pa.nulls(existing, field.type)
        for name, field in zip(schema.names, schema, strict=True)
    }
    columns["id"] = pa.array(np.arange(10**9, 10**9 + existing))
    columns["title"] = pa.array(["old"] * existing)
    pq.write_table(pa.table(columns, schema=schema), directory / "part-00000.parquet")
    path = tmp_path / "new.csv"
    n = 40_000
    pd.DataFrame({"id": np.arange(1, n + 1), "title": "new", "time": 1_400_000_000}).to_csv(
        path, index=False
    )

    def timed(target) -> float:
        start = time.perf_counter()
        result = pull("--source", str(path), "--batch-size", "400", "--dataset", str(target))
        assert result.exit_code == 0, result.output
        return time.perf_counter() - start

    fresh = min(timed(tmp_path / f"fresh{i}") for i in range(2))
    incremental = timed(directory)
    assert len(read_dataset(directory)) == existing + n
    assert incremental <= 1.5 * fresh + 0.5, (incremental, fresh)


# --- 9. passwords never reach the output ------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "secret"),
    [
        ("postgresql://u:hunter22@db:5432/hn", "hunter22"),
        ("postgresql://u:p@ss@w0rd@db:5432/hn?sslmode=require", "p@ss@w0rd"),
        ("postgresql://u:pa/ss@db/hn", "pa/ss"),
        ("postgresql://u@db/hn?password=hunter22&sslmode=require", "hunter22"),
        ("postgresql://u@db/hn?sslmode=require&password=hunter22", "hunter22"),
        ("host=db user=u password=hunter22 dbname=hn", "hunter22"),
        ("host=db password='hunter 22' dbname=hn", "hunter 22"),
        ("postgresql://u:s%40cret@db/hn", "s%40cret"),
    ],
)
def test_redact_masks_every_password_form(dsn, secret):
    masked = redact(f"cannot connect to {dsn}: FATAL: password for {secret} rejected", dsn)
    assert "***" in masked
    for piece in {secret, *secret.split("@"), "s@cret"}:
        if len(piece) > 2:
            assert piece not in masked, masked
    assert "db" in masked  # the host stays readable
    assert redact("postgresql://u@db/hn") == "postgresql://u@db/hn"


@pytest.mark.parametrize(
    ("dsn", "pieces"),
    [
        ("postgresql://u:s3cr@t-pw@127.0.0.1:1/hn", ["s3cr@t-pw", "t-pw"]),
        ("postgresql://u@127.0.0.1:1/hn?password=s3cretpw", ["s3cretpw"]),
    ],
)
def test_pull_errors_never_show_the_password(dsn, pieces):
    result = pull("--source", dsn)
    assert result.exit_code == 1 and "Error: cannot connect to" in result.output
    for piece in pieces:
        assert piece not in result.output, result.output


# --- 11. timeouts -------------------------------------------------------------------------------


def test_a_locked_table_is_a_one_line_error_not_a_wait(pg_dsn):
    locker = psycopg.connect(pg_dsn)
    locker.execute("LOCK TABLE hacker_news.items IN ACCESS EXCLUSIVE MODE")
    release = threading.Timer(20, locker.close)  # so that a pull without a timeout ends too
    release.start()
    try:
        start = time.perf_counter()
        result = pull("--source", pg_dsn, env={"UPVOTE_PG_LOCK_TIMEOUT": "1"})
        seconds = time.perf_counter() - start
    finally:
        release.cancel()
        locker.close()
    assert result.exit_code == 1, result.output
    assert seconds < 10
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "UPVOTE_PG_LOCK_TIMEOUT" in error[0], result.output
    assert not parts(default_dataset_dir())


def test_a_slow_query_hits_the_statement_timeout(pg_dsn):
    result = pull("--source", pg_dsn, env={"UPVOTE_PG_STATEMENT_TIMEOUT": "0.001"})
    assert result.exit_code == 1, result.output
    assert "UPVOTE_PG_STATEMENT_TIMEOUT" in result.output and "Traceback" not in result.output
    bad = pull("--source", pg_dsn, env={"UPVOTE_PG_LOCK_TIMEOUT": "soon"})
    assert (
        bad.exit_code == 1
        and "UPVOTE_PG_LOCK_TIMEOUT: Input should be a valid number" in bad.output
    )
