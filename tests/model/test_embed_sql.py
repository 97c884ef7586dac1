"""`upvote embed train DSN --query ...` streams a corpus from a real PostgreSQL server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from upvote.embeddings import KeyedVectors
from upvote.embeddings.cli import app
from upvote.embeddings.corpus import CorpusError, iter_documents

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


def test_the_query_runs_once_and_read_only(dsn, tmp_path, monkeypatch):
    """Counting words and encoding are two passes: the second reads a spool, not the server."""
    import psycopg

    connects = []
    real_connect = psycopg.connect

    def counting_connect(*args, **kwargs):
        connects.append(args)
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(psycopg, "connect", counting_connect)
    args = [
        "train",
        dsn,
        "--query",
        QUERY,
        "--min-count",
        "1",
        "--dim",
        "8",
        "--out",
        str(tmp_path),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(connects) == 1
    documents = iter_documents(dsn, query=QUERY)
    assert list(documents) == list(documents) and len(connects) == 2  # second pass: spool


def test_a_query_that_writes_is_refused(dsn):
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE IF NOT EXISTS corpus_writes")
    with pytest.raises(CorpusError, match="read-only transaction"):
        list(iter_documents(dsn, query="SELECT 'doc ' || nextval('corpus_writes')"))
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT last_value FROM corpus_writes").fetchone()[0] == 1  # unused


def test_the_password_is_never_printed(dsn, tmp_path):
    secret = "hunter2-secret"  # the test server trusts every local connection: it is ignored
    with_password = dsn.replace("postgres@", f"postgres:{secret}@")
    out = str(tmp_path)
    args = ["train", with_password, "--query", QUERY, "--min-count", "1", "--dim", "8"]
    result = CliRunner().invoke(app, [*args, "--out", out])
    assert result.exit_code == 0, result.output
    assert "postgres:***@" in result.output and secret not in result.output
    query_parameter = dsn + f"?password={secret}"
    broken = CliRunner().invoke(app, ["train", query_parameter, "--query", "SELECT nope",
                                      "--out", out])  # fmt: skip
    assert broken.exit_code == 1 and secret not in broken.output
