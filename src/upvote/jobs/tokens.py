"""API tokens of the embedding jobs service: table `upvote_tokens`, one row per named token.

A token is shown once, when it is created (`upvote jobs token create NAME`); the table keeps only
its SHA-256. Lookups go by that hash through the table's unique index, so no stored secret is
ever compared byte by byte with what a caller sent: a timing difference could at most reveal how
much of a *hash* matched, and finding a token whose hash shares a prefix with a stored one tells
nothing about the token itself (SHA-256 is preimage resistant). A constant-time compare is
therefore not needed here, unlike a comparison of raw secrets. Tokens are 256 random bits, so an
unsalted fast hash is enough (salting and slow hashes defend guessable passwords).

A job's owner is the name of the token that created it. Each token may carry its own quota; a
NULL limit means the defaults of the settings (jobs_max_concurrent_jobs, jobs_max_bytes).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg

PREFIX = "uvj_"  # makes a leaked token easy to recognise (secret scanners, logs)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")

SCHEMA = """
CREATE TABLE IF NOT EXISTS upvote_tokens (
    name text PRIMARY KEY,
    hash text NOT NULL UNIQUE,
    created timestamptz NOT NULL DEFAULT now(),
    revoked timestamptz,
    max_concurrent_jobs integer,
    max_bytes bigint
);
"""


class TokenError(ValueError):
    """A token name that is taken, unknown or malformed; the message says which."""


@dataclass(frozen=True)
class Token:
    name: str
    created: datetime
    revoked: datetime | None
    max_concurrent_jobs: int | None
    max_bytes: int | None


@dataclass(frozen=True)
class Quota:
    max_concurrent_jobs: int
    max_bytes: int


def apply_schema(conn: psycopg.Connection) -> None:
    conn.execute(SCHEMA)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(
    conn: psycopg.Connection,
    name: str,
    max_concurrent_jobs: int | None = None,
    max_bytes: int | None = None,
) -> str:
    """A new token for `name`; returns the token itself, which is stored nowhere."""
    if not NAME.fullmatch(name):
        raise TokenError(
            f"token name {name!r}: 1-64 letters, digits or _.@- (starting with a letter or digit)"
        )
    token = PREFIX + secrets.token_urlsafe(32)
    row = conn.execute(
        "INSERT INTO upvote_tokens (name, hash, max_concurrent_jobs, max_bytes) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO NOTHING RETURNING name",
        (name, digest(token), max_concurrent_jobs, max_bytes),
    ).fetchone()
    if row is None:
        raise TokenError(f"a token named {name!r} exists already (revoke it or pick another name)")
    return token


def find_token(conn: psycopg.Connection, token: str) -> Token | None:
    """The token's row, revoked ones included (the caller decides); None when unknown."""
    row = conn.execute(
        "SELECT name, created, revoked, max_concurrent_jobs, max_bytes FROM upvote_tokens "
        "WHERE hash = %s",
        (digest(token),),
    ).fetchone()
    return Token(**row) if row else None


def get_token(conn: psycopg.Connection, name: str) -> Token | None:
    row = conn.execute(
        "SELECT name, created, revoked, max_concurrent_jobs, max_bytes FROM upvote_tokens "
        "WHERE name = %s",
        (name,),
    ).fetchone()
    return Token(**row) if row else None


def list_tokens(conn: psycopg.Connection) -> list[Token]:
    rows = conn.execute(
        "SELECT name, created, revoked, max_concurrent_jobs, max_bytes FROM upvote_tokens "
        "ORDER BY name"
    ).fetchall()
    return [Token(**row) for row in rows]


def revoke_token(conn: psycopg.Connection, name: str) -> None:
    """Revoke at once: the next request with it gets a 401. Its jobs stay as they are."""
    row = conn.execute(
        "UPDATE upvote_tokens SET revoked = coalesce(revoked, now()) WHERE name = %s "
        "RETURNING name",
        (name,),
    ).fetchone()
    if row is None:
        raise TokenError(f"no token named {name!r}")


def quota(token: Token, default_jobs: int, default_bytes: int) -> Quota:
    """The token's own limits, or the defaults where it has none."""
    return Quota(
        token.max_concurrent_jobs if token.max_concurrent_jobs is not None else default_jobs,
        token.max_bytes if token.max_bytes is not None else default_bytes,
    )
