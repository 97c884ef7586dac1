"""The HTTP service: ``create_app(settings)`` builds a FastAPI app around one loaded model.

The routes live in ``routes/``, one module per OpenAPI tag: the MLX course contract
(``/ping``, ``/version``, ``/how_many_upvotes``, ``/logs``), the JSON API (``/predict``,
``/explain``, ``/similar``), operations (``/health``, ``/metrics``, ``/admin/reload``) and the web
page at ``/`` with the API docs at ``/docs``. What they share (the model holder, the
micro-batcher, the prediction log, the settings, the metrics) is made here, once per app, and
kept on ``app.state``; ``deps.py`` hands it to the routes.
"""

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from upvote.model.bundle import UpvoteModel
from upvote.serve.batching import MicroBatcher
from upvote.serve.config import ServeSettings
from upvote.serve.metrics import Metrics, MetricsMiddleware
from upvote.serve.predlog import FLUSH_SECONDS, PredictionLog
from upvote.serve.routes import api, contract, ops, web
from upvote.serve.state import ModelHolder, ModelNotLoaded

log = logging.getLogger(__name__)
MAX_ECHO_CHARS = 200  # a 422 shows at most this much of each input string it echoes
MAX_ECHO_ITEMS = 20  # ... and of each list or object


async def flush_every(predlog: PredictionLog, seconds: float) -> None:
    """Write the prediction log's buffered records to disk every ``seconds``."""
    while True:
        await asyncio.sleep(seconds)
        predlog.flush()


@asynccontextmanager
async def lifespan(app: FastAPI):
    state = app.state
    try:
        state.holder.load(state.settings.model_version)
    except Exception as error:  # keep running: 503 until a model is found (state.py)
        log.error("no model loaded at start-up: %s", error)
    flusher = asyncio.create_task(flush_every(state.predlog, FLUSH_SECONDS))
    yield
    flusher.cancel()
    state.predlog.close()


def shorten(value: Any) -> Any:
    """``value`` cut to ``MAX_ECHO_CHARS`` per string and ``MAX_ECHO_ITEMS`` per container."""
    if isinstance(value, str | bytes) and len(value) > MAX_ECHO_CHARS:
        return value[:MAX_ECHO_CHARS] + ("..." if isinstance(value, str) else b"...")
    if isinstance(value, dict):
        return {k: shorten(v) for k, v in list(value.items())[:MAX_ECHO_ITEMS]}
    if isinstance(value, list | tuple):
        return [shorten(v) for v in value[:MAX_ECHO_ITEMS]]
    return value


async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, with the echoed ``input`` cut short: a 100 KB title is not sent back."""
    errors = [{**e, "input": shorten(e["input"])} if "input" in e else e for e in error.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


async def model_not_loaded(request: Request, error: ModelNotLoaded) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=503)


async def internal_error(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error on %s", request.url.path)  # the traceback stays in the log
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    app = FastAPI(
        title="upvote",
        summary="Predict Hacker News upvotes from a story title.",
        lifespan=lifespan,
        docs_url=None,  # served by routes/web.py from local files, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.holder = ModelHolder(
        settings.models_dir, settings.model_version, settings.model_retry_seconds
    )
    app.state.predlog = PredictionLog(
        settings.logs_dir, settings.log_max_bytes, settings.log_backups
    )
    app.state.metrics = Metrics()
    app.state.batcher = MicroBatcher(UpvoteModel.predict_records, max_batch=settings.max_batch)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ModelNotLoaded, model_not_loaded)
    app.add_exception_handler(Exception, internal_error)
    for routes in (web, contract, api, ops):
        app.include_router(routes.router)
    app.mount("/static", StaticFiles(directory=web.STATIC), name="static")
    return app
