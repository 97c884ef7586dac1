"""The HTTP service: ``create_app(settings)`` builds a FastAPI app around one loaded model.

The routes live in ``routes/``, one module per OpenAPI tag: the MLX course contract
(``/ping``, ``/version``, ``/how_many_upvotes``, ``/logs``), the JSON API (``/predict``,
``/explain``, ``/similar``), operations (``/health``, ``/metrics``, ``/admin/reload``) and the web
page at ``/`` with the API docs at ``/docs``. What they share (the model holder, the
micro-batcher, the prediction log, the settings, the metrics) is made here, once per app, and
kept on ``app.state``; ``deps.py`` hands it to the routes.

Hostile input never reaches a 500 (docs/security.md): bodies are capped (``guards.py``) and
read one way (``body.py``), a 422 echoes only JSON-safe, shortened input, and an unexpected
error is logged by type and stack, never with its message (which may quote the request).
"""

import asyncio
import logging
import math
import traceback
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from upvote import swagger
from upvote.http_metrics import MetricsMiddleware
from upvote.model.bundle import UpvoteModel
from upvote.serve.batching import MicroBatcher
from upvote.serve.config import ServeSettings
from upvote.serve.drift import DriftCollector, DriftMonitor
from upvote.serve.guards import BodyLimitMiddleware, ContainErrors
from upvote.serve.live_gauges import LiveAccuracy
from upvote.serve.metrics import Metrics
from upvote.serve.predlog import FLUSH_SECONDS, PredictionLog
from upvote.serve.routes import api, contract, ops, web
from upvote.serve.state import ModelHolder, ModelNotLoaded

log = logging.getLogger(__name__)
MAX_ECHO_CHARS = 200  # a 422 shows at most this much of each input string it echoes
MAX_ECHO_ITEMS = 20  # ... and of each list or object
MAX_ERRORS = 50  # a 422 lists at most this many errors
MAX_DEPTH = 8  # ... and echoes nested input this deep


async def check_drift_every(drift: DriftMonitor, seconds: float) -> None:
    """Compute drift every ``seconds`` (on a worker thread), so that an alert is logged even
    when nobody reads ``/metrics`` or ``/monitoring``."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await asyncio.to_thread(drift.report)
        except Exception:
            log.exception("drift check failed")


async def flush_every(predlog: PredictionLog, seconds: float) -> None:
    """Write the prediction log's buffered records to disk every ``seconds``; an error (which
    ``flush`` already counts) never ends the loop."""
    while True:
        await asyncio.sleep(seconds)
        try:
            predlog.flush()
        except Exception:
            log.exception("prediction log flush failed")


@asynccontextmanager
async def lifespan(app: FastAPI):
    state = app.state
    try:
        state.holder.load(state.settings.model_version)
    except Exception as error:  # keep running: 503 until a model is found (state.py)
        log.error("no model loaded at start-up: %s", error)
    state.holder.watch(state.settings.alias_poll_seconds)  # follow champion when it moves
    tasks = [asyncio.create_task(flush_every(state.predlog, FLUSH_SECONDS))]
    every = state.settings.drift_check_seconds
    if every > 0:
        tasks.append(asyncio.create_task(check_drift_every(state.drift, every)))
    yield
    for task in tasks:
        task.cancel()
    state.holder.stop_watching()
    state.predlog.close()  # never raises: a full disk at shutdown is counted and logged


def json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON that always encodes: strings valid UTF-8 and cut to
    ``MAX_ECHO_CHARS``, containers cut to ``MAX_ECHO_ITEMS``, NaN and infinities as strings,
    bytes decoded with escapes, anything else as its (short) ``str``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if value.bit_length() <= 64 else f"<integer of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, bytes):
        value = value[: 4 * MAX_ECHO_CHARS].decode("utf-8", "backslashreplace")
    if isinstance(value, str):
        short = value[:MAX_ECHO_CHARS] + ("..." if len(value) > MAX_ECHO_CHARS else "")
        return short.encode("utf-8", "replace").decode("utf-8")  # lone surrogates -> "?"
    if depth >= MAX_DEPTH:
        return "..."
    if isinstance(value, dict):
        items = list(value.items())[:MAX_ECHO_ITEMS]
        return {json_safe(str(k)): json_safe(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple):
        return [json_safe(v, depth + 1) for v in value[:MAX_ECHO_ITEMS]]
    try:
        return json_safe(str(value))
    except Exception:
        return type(value).__name__


async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, made unable to fail: each error's fields (``input`` and ``ctx`` above all,
    which hold what the client sent) are JSON-safe and cut short (``json_safe``)."""
    try:
        errors = [
            {key: json_safe(e[key]) for key in ("type", "loc", "msg", "input", "ctx") if key in e}
            for e in error.errors()[:MAX_ERRORS]
        ]
        return JSONResponse({"detail": errors}, status_code=422)
    except Exception:  # never a 500 for a 422
        log.exception("could not render a validation error")
        return JSONResponse(
            {"detail": [{"type": "invalid", "loc": ["body"], "msg": "invalid input"}]},
            status_code=422,
        )


async def model_not_loaded(request: Request, error: ModelNotLoaded) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=503)


async def internal_error(request: Request, error: Exception) -> JSONResponse:
    """A 500 that tells the client nothing; the log gets the error's type and stack, not its
    message or the exceptions chained to it, which may quote the request's body."""
    stack = "".join(traceback.format_tb(error.__traceback__))
    log.error(
        "unhandled %s on %s %s\n%s", type(error).__name__, request.method, request.url.path, stack
    )
    return JSONResponse({"detail": "internal server error"}, status_code=500)


class UpvoteApp(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # outside Starlette's ServerErrorMiddleware, which re-raises after its 500 (guards.py)
        return ContainErrors(super().build_middleware_stack())


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    app = UpvoteApp(
        title="upvote",
        summary="Predict Hacker News upvotes from a story title.",
        lifespan=lifespan,
        docs_url=None,  # served by routes/web.py from local files, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.drift = DriftMonitor(settings)
    app.state.holder = ModelHolder(
        settings.models_dir,
        settings.model_version,
        settings.model_retry_seconds,
        on_swap=app.state.drift.reset,
    )
    app.state.predlog = PredictionLog(
        settings.logs_dir, settings.log_max_bytes, settings.log_backups
    )
    app.state.metrics = Metrics()
    app.state.metrics.registry.register(DriftCollector(app.state.drift))
    app.state.metrics.registry.register(LiveAccuracy(settings.logs_dir))  # `upvote monitor`'s
    app.state.batcher = MicroBatcher(UpvoteModel.predict_records, max_batch=settings.max_batch)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ModelNotLoaded, model_not_loaded)
    app.add_exception_handler(Exception, internal_error)
    for routes in (web, contract, api, ops):
        app.include_router(routes.router)
    swagger.mount(app)  # /static/docs, before /static
    app.mount("/static", StaticFiles(directory=web.STATIC), name="static")
    # the last added is the outermost: metrics count the 413s of the body limit too
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    paths = frozenset(getattr(route, "path", "") for route in app.routes)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics, paths=paths)
    return app
