"""A real PostgreSQL 15 server for the data tests, loaded with the shipped sample + edge cases."""

import itertools
import os
import signal

import pandas as pd
import pytest
from hn_edge_cases import EDGE_BASE, EDGE_ROWS
from pgserver import PostgresServer, find_bin_dir, insert_items, sample_story_rows

from upvote.data.dataset import SAMPLE_DIR


@pytest.fixture(scope="session")
def sample_stories() -> pd.DataFrame:
    return pd.read_parquet(SAMPLE_DIR / "stories.parquet")


@pytest.fixture(scope="session")
def pg_server(sample_stories):
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: install postgresql-15")
    server = PostgresServer.start()
    previous = signal.getsignal(signal.SIGTERM)

    def stop_then_die(signum, frame):  # `timeout pytest ...` must not leak the server
        server.stop()
        signal.signal(signal.SIGTERM, previous)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_then_die)
    try:
        edge = [{"id": EDGE_BASE + offset, **row} for offset, row, _ in EDGE_ROWS]
        insert_items(server.dsn, [*sample_story_rows(sample_stories), *edge])
        yield server
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()


_names = itertools.count()


@pytest.fixture
def pg_dsn(pg_server) -> str:
    """A private copy of the loaded database, so a test may insert rows."""
    return pg_server.clone(f"hn_{next(_names)}")


@pytest.fixture(scope="session")
def expected_ids(sample_stories) -> set[int]:
    """Ids a full pull must keep: every sample story with an id, plus the kept edge rows."""
    sample_ids = set(sample_stories["id"].dropna().astype(int))
    return sample_ids | {EDGE_BASE + offset for offset, _, kept in EDGE_ROWS if kept}
