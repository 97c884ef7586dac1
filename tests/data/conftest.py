"""A real PostgreSQL 15 server for the data tests, loaded with the shipped sample + edge cases."""

import itertools
import os
import signal
from datetime import datetime

import pandas as pd
import pytest
from pgserver import PostgresServer, find_bin_dir, insert_items, sample_story_rows

from upvote.data.dataset import SAMPLE_DIR

EDGE_BASE = 900_000_000
T0 = datetime(2016, 10, 1, 12, 0, 0)  # after every dated sample story

# (id offset, row, kept by `upvote data pull`?)
EDGE_ROWS = [
    (1, {"type": "story", "title": None, "by": "a", "time": T0, "score": 5}, False),
    (2, {"type": "story", "title": "", "by": "a", "time": T0, "score": 5}, False),
    (3, {"type": "story", "title": "   ", "by": "a", "time": T0, "score": 5}, False),
    (4, {"type": "story", "title": "Minus one", "by": "b", "time": T0, "score": -1}, False),
    (5, {"type": "story", "title": "Dead story", "by": "b", "time": T0, "dead": True}, False),
    (6, {"type": "story", "title": "Live, dead=false", "by": "c", "time": T0, "dead": False}, True),
    (7, {"type": "story", "title": "Live, dead NULL", "by": "c", "time": T0, "score": 3}, True),
    (8, {"type": "comment", "title": "A comment", "by": "d", "time": T0, "text": "hi"}, False),
    (9, {"type": "story", "title": "Ask HN: Q&amp;A on &lt;code&gt;", "by": "e", "time": T0}, True),
    (10, {"type": "story", "title": "No time at all", "by": "e", "time": None, "score": 7}, True),
    (11, {"type": "story", "title": "Same title twice", "by": "f", "time": T0, "score": 1}, True),
    (12, {"type": "story", "title": "Same title twice", "by": "f", "time": T0, "score": 1}, True),
]


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
