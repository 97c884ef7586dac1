"""`upvote data pull` from a real PostgreSQL 15 server (started by conftest.py)."""

import html
import os
import re
import signal
import subprocess
import sys
from datetime import datetime, timedelta

import pandas as pd
import psycopg
import pyarrow.parquet as pq
from hn_edge_cases import EDGE_BASE
from pgserver import insert_items
from typer.testing import CliRunner

from upvote.cli import app
from upvote.data import Query, load_stories, postgres_batches, pull
from upvote.data.dataset import default_dataset_dir, parts, read_dataset


def run_cli(*args: str):
    result = CliRunner().invoke(app, ["data", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def reported(output: str, counter: str) -> int:
    """A count from the printed cleaning summary (0 when the line is absent)."""
    match = re.search(rf"^\s*(?:dropped |fixed )?{counter}\s+([\d,]+)$", output, re.M)
    return int(match.group(1).replace(",", "")) if match else 0


def test_full_pull_filters_cleans_and_reports(pg_dsn, expected_ids, sample_stories):
    result = run_cli("pull", "--source", pg_dsn)
    assert result.exit_code == 0, result.output
    df = load_stories()
    assert set(df["id"]) == expected_ids
    assert not df["id"].duplicated().any()
    assert (df["source"] == "postgresql").all() and (df["selection"] == "unfiltered").all()
    titles = df.set_index("id")["title"]
    assert titles[EDGE_BASE + 9] == "Ask HN: Q&A on <code>"
    assert df.loc[df["id"] == EDGE_BASE + 10, "time"].isna().all()
    # The empty and blank titles and the -1 score were dropped and counted, not lost silently.
    assert reported(result.output, "empty_title") == 2
    assert reported(result.output, "negative_score") == 1
    with_id = sample_stories.dropna(subset=["id"])["title"]
    escaped_in_sample = int((with_id.map(html.unescape) != with_id).sum())
    assert reported(result.output, "html_unescaped") == escaped_in_sample + 1
    assert reported(result.output, "undated") == 1
    assert reported(result.output, "rows kept") == len(expected_ids)
    assert reported(result.output, "rows read") == len(expected_ids) + 3


def test_pull_streams_in_bounded_batches(pg_dsn, expected_ids):
    sizes = [len(t) for t in postgres_batches(pg_dsn, Query(), batch_size=1000)]
    assert max(sizes) == 1000 and len(sizes) > 30
    assert sum(sizes) == len(expected_ids) + 3  # + empty, blank and -1 rows, dropped later
    result = pull(pg_dsn, batch_size=1000)
    # One row group per batch: the writer never held more than a batch.
    assert pq.ParquetFile(result.part).metadata.num_row_groups == result.batches
    assert result.batches == len(sizes)


def test_incremental_pull_appends_only_new_rows(pg_dsn, expected_ids, sample_stories):
    pull(pg_dsn, Query(until=datetime(2016, 1, 1)))
    first_ids = set(read_dataset(default_dataset_dir())["id"])
    assert first_ids and max(load_stories()["time"]) < pd.Timestamp("2016-01-01")
    second = pull(pg_dsn)  # since defaults to the newest time already pulled
    assert len(parts(default_dataset_dir())) == 2
    assert second.report.already_in_dataset >= 1  # the rows at the boundary timestamp
    newest = sample_stories["time"].max().to_pydatetime()
    new_rows = [
        {
            "id": EDGE_BASE + 100 + i,
            "type": "story",
            "title": f"Newer {i}",
            "by": "n",
            "time": newest + timedelta(hours=1, minutes=i),
            "score": i,
        }
        for i in range(3)
    ]
    backfilled = {
        "id": EDGE_BASE + 200,
        "type": "story",
        "title": "Old",
        "time": datetime(2010, 1, 1),
    }
    insert_items(pg_dsn, [*new_rows, backfilled])
    third = pull(pg_dsn)
    appended = set(pd.read_parquet(third.part)["id"])
    assert appended == {r["id"] for r in new_rows}  # the backfilled 2010 row is before --since
    ids = read_dataset(default_dataset_dir())["id"]
    assert not ids.duplicated().any()
    assert set(ids) == expected_ids | appended
    assert first_ids < set(ids)


def test_pull_twice_is_idempotent(pg_dsn, expected_ids):
    assert run_cli("pull", "--source", pg_dsn).exit_code == 0
    before = read_dataset(default_dataset_dir())
    again = run_cli("pull", "--source", pg_dsn, "--since", "2000-01-01")
    assert again.exit_code == 0, again.output
    assert "nothing new; dataset unchanged" in again.output
    assert reported(again.output, "already_in_dataset") == len(expected_ids)
    after = read_dataset(default_dataset_dir())
    pd.testing.assert_frame_equal(before, after)


def test_killed_pull_leaves_previous_dataset_intact(pg_dsn, isolated_data_dir):
    pull(pg_dsn, Query(limit=500))
    before = read_dataset(default_dataset_dir())
    before_parts = parts(default_dataset_dir())
    process = subprocess.Popen(
        [sys.executable, "-m", "upvote", "data", "pull", "--source", pg_dsn, "--batch-size", "50"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "UPVOTE_DATA_DIR": str(isolated_data_dir)},
    )
    line = process.stderr.readline()
    assert line.startswith("batch 1:"), line
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # killed mid-way, not finished
    assert list(default_dataset_dir().glob(".part-*.tmp"))  # the half-written part
    assert parts(default_dataset_dir()) == before_parts
    pd.testing.assert_frame_equal(read_dataset(default_dataset_dir()), before)
    retry = pull(pg_dsn)  # the next pull cleans up and completes
    assert retry.part is not None and not list(default_dataset_dir().glob(".part-*.tmp"))


def test_limit_sample_and_until(pg_dsn, sample_stories):
    limited = pull(pg_dsn, Query(limit=100), directory=default_dataset_dir() / "a")
    oldest = sample_stories.dropna(subset=["id", "time"]).sort_values(["time", "id"]).head(100)
    assert set(pd.read_parquet(limited.part)["id"]) == set(oldest["id"])
    sampled = pd.read_parquet(pull(pg_dsn, Query(sample=0.1), default_dataset_dir() / "b").part)
    assert 0.07 < len(sampled) / sample_stories["id"].notna().sum() < 0.13
    assert (sampled["selection"] == "random_sample").all()
    until = pd.read_parquet(
        pull(pg_dsn, Query(until=datetime(2010, 1, 1)), default_dataset_dir() / "c").part
    )
    assert until["time"].max() < pd.Timestamp("2010-01-01")


def test_with_users_joins_author_karma(pg_dsn):
    with psycopg.connect(pg_dsn) as conn:
        conn.execute(
            "INSERT INTO hacker_news.users (id, created, karma) VALUES "
            "('pg', '2006-10-09', 155000), ('e', '2020-01-01', 12)"
        )
    result = run_cli("pull", "--source", pg_dsn, "--with-users")
    assert result.exit_code == 0, result.output
    df = load_stories()
    assert {"author_karma", "author_created"} <= set(df.columns)
    assert set(df.loc[df["by"] == "pg", "author_karma"]) == {155000}
    assert df.loc[df["by"] == "e", "author_created"].eq(pd.Timestamp("2020-01-01")).all()
    assert df.loc[~df["by"].isin(["pg", "e"]), "author_karma"].isna().all()


def test_unreachable_database_is_a_clean_error(pg_server):
    result = run_cli("pull", "--source", "postgresql://u:secret@127.0.0.1:1/hn")
    assert result.exit_code == 1
    assert "Error: cannot connect to postgresql://u:***@127.0.0.1:1/hn" in result.output
    assert "secret" not in result.output and "Traceback" not in result.output
    missing_db = pg_server.dsn.rsplit("/", 1)[0] + "/nope"
    result = run_cli("pull", "--source", missing_db)
    assert result.exit_code == 1 and 'database "nope" does not exist' in result.output


def test_no_source_is_a_clean_error():
    result = run_cli("pull")
    assert result.exit_code == 1 and "DATABASE_URL" in result.output
