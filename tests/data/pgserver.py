"""A throw-away PostgreSQL 15 server for tests and benchmarks, loaded with the production schema.

Used by tests/data/conftest.py and benchmarks/ingest.py (which adds this folder to ``sys.path``).
The server runs from a temporary directory on a free port with a private unix-socket directory, so
it never touches a system PostgreSQL. initdb refuses to run as root, so as root every server command
runs as the ``postgres`` user through ``runuser``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psycopg

BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"))]

# Exactly the production tables (see the data README).
SCHEMA_SQL = """
CREATE SCHEMA hacker_news;
CREATE TABLE hacker_news.items (
    id int PRIMARY KEY, dead bool, type varchar(20), by varchar(255), "time" timestamp,
    text text, parent int, kids int[], url varchar(255), score int, title varchar(255),
    descendants int
);
CREATE INDEX items_by ON hacker_news.items (by);
CREATE INDEX items_time ON hacker_news.items ("time");
CREATE INDEX items_type ON hacker_news.items (type);
CREATE TABLE hacker_news.users (
    id varchar(255) PRIMARY KEY, created timestamp, karma int, about text, submitted int[]
);
"""

ITEM_COLUMNS = ["id", "dead", "type", "by", "time", "text", "parent", "url", "score", "title",
                "descendants"]  # fmt: skip


def find_bin_dir() -> Path | None:
    """The first folder holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    for directory in BIN_DIRS:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """A running server; ``dsn`` connects as the superuser ``postgres`` to database ``hn``."""

    root: Path
    port: int
    bin_dir: Path

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/hn"

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, capture_output=True)

    @classmethod
    def start(cls, bin_dir: Path | None = None) -> PostgresServer:
        bin_dir = bin_dir or find_bin_dir()
        if bin_dir is None:
            raise FileNotFoundError("no PostgreSQL binaries (initdb, pg_ctl) found")
        root = Path(tempfile.mkdtemp(prefix="upvote-pg-"))
        (root / "sock").mkdir()
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
            shutil.chown(root / "sock", "postgres")
        server = cls(root=root, port=_free_port(), bin_dir=bin_dir)
        server._run(str(bin_dir / "initdb"), "-D", str(root / "db"), "-U", "postgres",
                    "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip
        options = (f"-p {server.port} -k {root / 'sock'} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")  # fmt: skip
        server._run(str(bin_dir / "pg_ctl"), "-D", str(root / "db"), "-o", options,
                    "-l", str(root / "log"), "-w", "start")  # fmt: skip
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/postgres",
                             autocommit=True) as conn:  # fmt: skip
            conn.execute("CREATE DATABASE hn")
        with psycopg.connect(server.dsn) as conn:
            conn.execute(SCHEMA_SQL)
        return server

    def clone(self, name: str) -> str:
        """A fresh copy of database ``hn`` (CREATE DATABASE ... TEMPLATE); returns its DSN."""
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE hn')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "db"), "-m", "immediate",
                  "-w", "stop")  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


def insert_items(dsn: str, rows: Iterable[dict]) -> None:
    """Insert item rows (dicts keyed by ITEM_COLUMNS; missing keys are NULL) with COPY."""
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        columns = ", ".join(f'"{c}"' for c in ITEM_COLUMNS)
        with cur.copy(f"COPY hacker_news.items ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row.get(c) for c in ITEM_COLUMNS])


def sample_story_rows(stories: pd.DataFrame) -> list[dict]:
    """The shipped sample's stories that have an id, as item rows (``dead`` NULL: live items)."""
    dated = stories[stories["id"].notna()].drop_duplicates("id")
    frame = dated[["id", "type", "by", "time", "url", "score", "title", "descendants"]]
    frame = frame.assign(url=frame["url"].str.slice(0, 255))  # varchar(255), as in production
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")
