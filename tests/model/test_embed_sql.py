"""`upvote embed train DSN --query ...` streams a corpus from a real PostgreSQL server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from upvote.embeddings import KeyedVectors
from upvote.embeddings.cli import app
from upvote.embeddings.corpus import iter_documents

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from pgserver import PostgresServer, find_bin_dir, insert_items


@pytest.fixture(scope="module")
def dsn():
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: install postgresql-15")
    server = PostgresServer.start()
    try:
        rows = [
            {"id": i, "type": "story", "title": f"show hn my {word} in rust" if i % 2 else None}
            for i, word in enumerate(["compiler", "database", "editor", "kernel"] * 50)
        ]
        rows.append({"id": 10_000, "type": "comment", "text": "not a title"})
        insert_items(server.dsn, rows)
        yield server.dsn
    finally:
        server.stop()


QUERY = "SELECT title FROM hacker_news.items WHERE type = 'story' ORDER BY id"


def test_sql_documents_skip_null_rows(dsn):
    documents = list(iter_documents(dsn, query=QUERY))
    assert len(documents) == 100  # the 100 NULL titles are skipped
    assert documents[0] == "show hn my database in rust"


def test_cli_trains_from_a_query(dsn, tmp_path):
    out = str(tmp_path)
    args = ["train", dsn, "--query", QUERY, "--min-count", "1", "--dim", "8", "--out", out]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    vectors = KeyedVectors.load(tmp_path / "vectors.npz")
    assert set(vectors.index_to_key) == {"show", "hn", "my", "database", "kernel", "in", "rust"}
    broken = CliRunner().invoke(app, ["train", dsn, "--query", "SELECT nope", "--out", out])
    assert broken.exit_code == 1 and 'column "nope" does not exist' in broken.output
