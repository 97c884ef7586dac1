"""The jobs API: ``create_app(settings)`` builds a FastAPI app on the job database.

What the routes share is made here, once per app, on ``app.state``: a psycopg connection pool
(opened without waiting, so the app starts while the database is away: /health says 503 and
requests get a 503 until it is back), the Procrastinate app that queues tasks (opened in the
lifespan), the vector cache of /similar, and a Prometheus registry with the queue's collector.
Nothing happens at import.

Errors never leak secrets or tracebacks: a 422 lists each error's type, location and message
only (never the input, which may hold a token or a URL with a password), a database failure is a
503 without the DSN, anything unexpected a bare 500 logged by type and stack.
"""

from __future__ import annotations

import logging
import traceback
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from procrastinate.exceptions import ConnectorException
from prometheus_client import CollectorRegistry
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from upvote import swagger
from upvote.http_metrics import MetricsMiddleware
from upvote.jobs.api.config import JobsApiSettings
from upvote.jobs.api.metrics import HttpMetrics, JobsCollector
from upvote.jobs.api.models import JobCreate
from upvote.jobs.api.routes import jobs, ops, web
from upvote.jobs.api.vectors import VectorCache
from upvote.jobs.artifacts import open_store
from upvote.jobs.options import database_url
from upvote.jobs.queue import make_app

log = logging.getLogger(__name__)
MAX_ERRORS = 20


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.pool.open(wait=False)
    app.state.queue.open(app.state.pool)  # one pool: it queues tasks over ours
    try:
        yield
    finally:
        app.state.queue.close()
        app.state.pool.close()


async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    errors = [
        {"type": str(e.get("type")), "loc": [str(part) for part in e.get("loc", ())],
         "msg": str(e.get("msg"))}
        for e in error.errors()[:MAX_ERRORS]
    ]  # fmt: skip
    return JSONResponse({"detail": errors}, status_code=422)


async def database_down(request: Request, error: Exception) -> JSONResponse:
    log.warning("job database unavailable: %s", type(error).__name__)
    return JSONResponse({"detail": "the job database is unavailable; retry later"}, 503)


async def internal_error(request: Request, error: Exception) -> JSONResponse:
    stack = "".join(traceback.format_tb(error.__traceback__))
    log.error("unhandled %s on %s %s\n%s", type(error).__name__, request.method,
              request.url.path, stack)  # fmt: skip
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def with_body_schemas(app: FastAPI) -> None:
    """POST /jobs reads its body by hand (JSON or a streamed upload), so FastAPI does not list
    JobCreate among the schemas its OpenAPI document refers to: add it (and what it nests)."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            body = JobCreate.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(body.pop("$defs", {}))
            schemas["JobCreate"] = body
        return app.openapi_schema

    app.openapi = openapi


def create_app(settings: JobsApiSettings | None = None) -> FastAPI:
    settings = settings or JobsApiSettings()
    dsn = database_url(settings.jobs_database_url)
    app = FastAPI(
        title="upvote embeddings",
        summary="Train word2vec on your corpus: jobs, vectors, neighbours.",
        lifespan=lifespan,
        docs_url=None,  # routes/web.py serves it from local files, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.pool = ConnectionPool(
        dsn, min_size=1, max_size=settings.jobs_db_pool_size, open=False,
        timeout=settings.jobs_db_timeout_s,
        kwargs={"autocommit": True, "row_factory": dict_row}, name="upvote-jobs-api",
    )  # fmt: skip
    app.state.queue = make_app(dsn, settings.jobs_dir)
    app.state.artifacts = open_store(settings)  # where jobs' files are: the API reads only it
    app.state.vectors = VectorCache(settings.jobs_vector_cache)
    app.state.registry = CollectorRegistry()
    app.state.registry.register(JobsCollector(app.state.pool, settings.jobs_db_timeout_s))
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(psycopg.OperationalError, database_down)
    app.add_exception_handler(PoolTimeout, database_down)
    app.add_exception_handler(ConnectorException, database_down)  # Procrastinate's, deferring
    app.add_exception_handler(Exception, internal_error)
    for routes in (web, jobs, ops):
        app.include_router(routes.router)
    swagger.mount(app)  # /static/docs, before /static
    app.mount("/static", StaticFiles(directory=web.STATIC), name="static")
    with_body_schemas(app)
    paths = frozenset(getattr(route, "path", "") for route in app.routes)
    metrics = HttpMetrics(app.state.registry)
    app.add_middleware(MetricsMiddleware, metrics=metrics, paths=paths)
    return app
