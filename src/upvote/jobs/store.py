"""Our records of embedding jobs: one row per job in the PostgreSQL table `upvote_jobs`.

Procrastinate's own tables say which worker runs which task and retry it; they know nothing of
what a user asked for or how far training got. This table does, and it outlives the queue's rows,
so the API and `upvote jobs status` read it alone. Every function takes an open connection
(`connect`), autocommit: each update is visible to other machines at once, and a killed worker
leaves no transaction open.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb


class State(StrEnum):
    queued = "queued"
    fetching = "fetching"
    encoding = "encoding"
    training = "training"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINAL = (State.succeeded, State.failed, State.cancelled)  # a job in these never changes again
RUNNING = (State.fetching, State.encoding, State.training)

# Idempotent: `upvote jobs init` may run on every deploy.
SCHEMA = """
DO $$ BEGIN
    CREATE TYPE upvote_job_state AS ENUM
        ('queued', 'fetching', 'encoding', 'training', 'succeeded', 'failed', 'cancelled');
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
CREATE TABLE IF NOT EXISTS upvote_jobs (
    id bigserial PRIMARY KEY,
    owner text NOT NULL DEFAULT '',
    state upvote_job_state NOT NULL DEFAULT 'queued',
    corpus text NOT NULL,
    options jsonb NOT NULL DEFAULT '{}',
    progress jsonb NOT NULL DEFAULT '{}',
    worker text,
    queue_id bigint,
    attempts integer NOT NULL DEFAULT 0,
    error text,
    created timestamptz NOT NULL DEFAULT now(),
    started timestamptz,
    finished timestamptz
);
CREATE INDEX IF NOT EXISTS upvote_jobs_owner_created ON upvote_jobs (owner, created DESC);
-- the corpus size counted against its owner's byte quota (an upload's at once, a URL's once
-- downloaded); deleted: DELETE /jobs/{id} keeps the row (metrics and quotas stay consistent)
ALTER TABLE upvote_jobs ADD COLUMN IF NOT EXISTS corpus_bytes bigint;
ALTER TABLE upvote_jobs ADD COLUMN IF NOT EXISTS deleted timestamptz;
"""


@dataclass(frozen=True)
class Job:
    """One row of upvote_jobs. options: the `upvote embed train` options given (the rest keep
    Word2VecParams' defaults); progress: fraction, words_per_s, loss, eta_s, epoch."""

    id: int
    owner: str
    state: State
    corpus: str
    options: dict
    progress: dict
    worker: str | None
    queue_id: int | None
    attempts: int
    error: str | None
    created: datetime
    started: datetime | None
    finished: datetime | None
    corpus_bytes: int | None = None
    deleted: datetime | None = None

    @classmethod
    def from_row(cls, row: dict) -> Job:
        return cls(**(row | {"state": State(row["state"])}))

    def to_dict(self) -> dict:
        """JSON-ready: times as ISO 8601 strings."""
        out = asdict(self) | {"state": self.state.value}
        for key in ("created", "started", "finished", "deleted"):
            out[key] = out[key].isoformat() if out[key] is not None else None
        return out


def connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True, row_factory=dict_row)


def apply_schema(conn: psycopg.Connection) -> None:
    conn.execute(SCHEMA)


def create_job(
    conn: psycopg.Connection,
    corpus: str,
    options: dict,
    owner: str = "",
    corpus_bytes: int | None = None,
) -> Job:
    row = conn.execute(
        "INSERT INTO upvote_jobs (owner, corpus, options, corpus_bytes) "
        "VALUES (%s, %s, %s, %s) RETURNING *",
        (owner, corpus, Jsonb(options), corpus_bytes),
    ).fetchone()
    return Job.from_row(row)


def get_job(conn: psycopg.Connection, job_id: int) -> Job | None:
    row = conn.execute("SELECT * FROM upvote_jobs WHERE id = %s", (job_id,)).fetchone()
    return Job.from_row(row) if row else None


def list_jobs(
    conn: psycopg.Connection,
    owner: str | None = None,
    state: State | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Job]:
    """Newest first, deleted jobs left out; owner/state None: any."""
    rows = conn.execute(
        "SELECT * FROM upvote_jobs WHERE deleted IS NULL "
        "AND (%(owner)s::text IS NULL OR owner = %(owner)s) "
        "AND (%(state)s::upvote_job_state IS NULL OR state = %(state)s) "
        "ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
        {"owner": owner, "state": state, "limit": limit, "offset": offset},
    ).fetchall()
    return [Job.from_row(row) for row in rows]


def count_jobs(conn: psycopg.Connection, owner: str, state: State | None = None) -> int:
    """How many of owner's jobs (not deleted) are in `state` (None: any)."""
    return conn.execute(
        "SELECT count(*) AS n FROM upvote_jobs WHERE deleted IS NULL AND owner = %(owner)s "
        "AND (%(state)s::upvote_job_state IS NULL OR state = %(state)s)",
        {"owner": owner, "state": state},
    ).fetchone()["n"]


def usage(conn: psycopg.Connection, owner: str, besides: int | None = None) -> tuple[int, int]:
    """(jobs not final, corpus bytes of all jobs) of owner, deleted ones left out, job `besides`
    too: what counts against the owner's quota."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE state NOT IN ('succeeded', 'failed', 'cancelled')) AS n, "
        "coalesce(sum(corpus_bytes), 0) AS bytes FROM upvote_jobs "
        "WHERE deleted IS NULL AND owner = %s AND id IS DISTINCT FROM %s",
        (owner, besides),
    ).fetchone()
    return row["n"], int(row["bytes"])


def set_corpus_bytes(conn: psycopg.Connection, job_id: int, size: int) -> None:
    conn.execute("UPDATE upvote_jobs SET corpus_bytes = %s WHERE id = %s", (size, job_id))


def mark_deleted(conn: psycopg.Connection, job_id: int) -> None:
    """Delete a job: cancelled first when it has not finished (its worker stops at its next
    progress report and then removes the job's folder itself, run_job), stamped deleted. The row
    stays so that failure counts and durations in /metrics never go backwards; every listing and
    quota leaves it out."""
    set_state(conn, job_id, State.cancelled)
    conn.execute(
        "UPDATE upvote_jobs SET deleted = coalesce(deleted, now()) WHERE id = %s", (job_id,)
    )


def set_queue_id(conn: psycopg.Connection, job_id: int, queue_id: int) -> None:
    """The Procrastinate job that runs this one (to find it in the queue's own tables)."""
    conn.execute("UPDATE upvote_jobs SET queue_id = %s WHERE id = %s", (queue_id, job_id))


def start_job(conn: psycopg.Connection, job_id: int, worker: str) -> Job | None:
    """Claim the job for one attempt (attempts + 1); None when it is already final (cancelled
    while queued, or finished by an earlier attempt): then there is nothing to run."""
    row = conn.execute(
        "UPDATE upvote_jobs SET state = 'encoding', worker = %s, attempts = attempts + 1, "
        "started = coalesce(started, now()), error = NULL "
        "WHERE id = %s AND state NOT IN ('succeeded', 'failed', 'cancelled') RETURNING *",
        (worker, job_id),
    ).fetchone()
    return Job.from_row(row) if row else None


def set_state(
    conn: psycopg.Connection, job_id: int, state: State, error: str | None = None
) -> bool:
    """Move a job that is not final yet to `state` (a final state also stamps `finished`);
    False when it was final already, so a cancellation is never overwritten by a late finish."""
    row = conn.execute(
        "UPDATE upvote_jobs SET state = %(state)s, error = coalesce(%(error)s, error), "
        "finished = CASE WHEN %(final)s THEN now() ELSE finished END "
        "WHERE id = %(id)s AND state NOT IN ('succeeded', 'failed', 'cancelled') RETURNING id",
        {"state": state, "error": error, "final": state in FINAL, "id": job_id},
    ).fetchone()
    return row is not None


def set_progress(conn: psycopg.Connection, job_id: int, progress: dict) -> State | None:
    """Store the job's progress and return its state in the same round trip: the trainer
    learns of a cancellation from its next progress report."""
    row = conn.execute(
        "UPDATE upvote_jobs SET progress = %s WHERE id = %s RETURNING state",
        (Jsonb(progress), job_id),
    ).fetchone()
    return State(row["state"]) if row else None


def cancel_job(conn: psycopg.Connection, job_id: int) -> Job | None:
    """Cancel a job that has not finished (a running one stops at its next progress report);
    returns the job as it now is, None when there is no such job."""
    set_state(conn, job_id, State.cancelled)
    return get_job(conn, job_id)
