"""What the routes share, from ``app.state`` (made once per app by ``create_app``), and the caller
named by the request's bearer token.

Every job route depends on ``current_caller``: no token, an unknown or a revoked one is a 401
with a ``WWW-Authenticate`` header (RFC 6750). The token is looked up by its hash (tokens.py) and
never logged or echoed.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import procrastinate
import psycopg
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool

from upvote.jobs.api.config import JobsApiSettings
from upvote.jobs.api.vectors import VectorCache
from upvote.jobs.artifacts import ArtifactStore
from upvote.jobs.tokens import Quota, find_token, quota

REALM = 'Bearer realm="upvote-jobs"'
bearer = HTTPBearer(auto_error=False, description="A token of `upvote jobs token create`.")


@dataclass(frozen=True)
class Caller:
    name: str  # the token's name: the owner of the jobs it creates
    quota: Quota


async def get_settings(request: Request) -> JobsApiSettings:
    return request.app.state.settings


async def get_pool(request: Request) -> ConnectionPool:
    return request.app.state.pool


async def get_queue(request: Request) -> procrastinate.App:
    return request.app.state.queue


async def get_vectors(request: Request) -> VectorCache:
    return request.app.state.vectors


async def get_artifacts(request: Request) -> ArtifactStore:
    return request.app.state.artifacts


Settings = Annotated[JobsApiSettings, Depends(get_settings)]
Artifacts = Annotated[ArtifactStore, Depends(get_artifacts)]
Pool = Annotated[ConnectionPool, Depends(get_pool)]
Queue = Annotated[procrastinate.App, Depends(get_queue)]
Vectors = Annotated[VectorCache, Depends(get_vectors)]


def connection(pool: Pool, settings: Settings) -> Iterator[psycopg.Connection]:
    """One pooled connection per request (autocommit, dict rows: store.py's conventions)."""
    with pool.connection(timeout=settings.jobs_db_timeout_s) as conn:
        yield conn


Conn = Annotated[psycopg.Connection, Depends(connection)]


def unauthorized(message: str, error: str | None = None) -> HTTPException:
    header = REALM + (f', error="{error}"' if error else "")
    return HTTPException(401, detail=message, headers={"WWW-Authenticate": header})


def authenticate(
    conn: psycopg.Connection, settings: JobsApiSettings, credentials: HTTPAuthorizationCredentials
) -> Caller:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    token = find_token(conn, credentials.credentials)
    if token is None:
        raise unauthorized("unknown token", "invalid_token")
    if token.revoked is not None:
        raise unauthorized("this token was revoked", "invalid_token")
    limits = quota(token, settings.jobs_max_concurrent_jobs, settings.jobs_max_bytes)
    return Caller(token.name, limits)


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def current_caller(conn: Conn, settings: Settings, credentials: Credentials) -> Caller:
    """The caller, on the request's connection (which the route then uses too)."""
    return authenticate(conn, settings, credentials)


def pooled_caller(pool: Pool, settings: Settings, credentials: Credentials) -> Caller:
    """The caller, on a connection held only for the lookup: for the upload route, which must
    not hold a connection while a body streams in for minutes."""
    with pool.connection(timeout=settings.jobs_db_timeout_s) as conn:
        return authenticate(conn, settings, credentials)


CurrentCaller = Annotated[Caller, Depends(current_caller)]
PooledCaller = Annotated[Caller, Depends(pooled_caller)]
