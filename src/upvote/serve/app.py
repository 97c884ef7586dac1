"""The HTTP service: ``create_app(settings)`` builds a FastAPI app around one loaded model.

Endpoints: the MLX course contract (``/ping``, ``/version``, ``/how_many_upvotes``, ``/logs``),
a JSON API (``/predict``, ``/explain``, ``/similar``), operations (``/health``, ``/metrics``,
``/admin/reload``) and the web page at ``/``. OpenAPI docs are at ``/docs``.
"""

import asyncio
import logging
import secrets
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ValidationError

from upvote.model.bundle import UpvoteModel
from upvote.serve.batching import MicroBatcher
from upvote.serve.config import ServeSettings
from upvote.serve.metrics import Metrics, MetricsMiddleware
from upvote.serve.predlog import FLUSH_SECONDS, PredictionLog
from upvote.serve.schemas import (
    ExplainOut,
    FactorContribution,
    HealthOut,
    HowManyUpvotesIn,
    HowManyUpvotesOut,
    LogsOut,
    PredictIn,
    Prediction,
    PredictOut,
    ReloadIn,
    ReloadOut,
    SimilarOut,
    SimilarWord,
    Story,
    VersionOut,
    WordContribution,
)
from upvote.serve.state import ModelHolder, ModelNotLoaded

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def _model_input(story: Story) -> dict[str, Any]:
    """A story as the model reads it. ``url`` only when the client sent the field: an explicit
    null or "" is a text post (Ask HN...), a missing field an unknown url (features.py)."""
    out = {"title": story.title, "by": story.by, "time": story.time}
    if "url" in story.model_fields_set:
        out["url"] = story.url
    return out


def request_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body a route validates itself, so /docs shows it as for a declared body."""
    schema = {"application/json": {"schema": model.model_json_schema()}}
    return {"requestBody": {"required": True, "content": schema}}


def json_response(body: BaseModel) -> Response:
    """``body`` as JSON, skipping FastAPI's validation of a returned model (already valid)."""
    return Response(body.model_dump_json(), media_type="application/json")


async def flush_every(predlog: PredictionLog, seconds: float) -> None:
    """Write the prediction log's buffered records to disk every ``seconds``."""
    while True:
        await asyncio.sleep(seconds)
        predlog.flush()


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    holder = ModelHolder(settings.models_dir)
    predlog = PredictionLog(settings.logs_dir, settings.log_max_bytes, settings.log_backups)
    metrics = Metrics()
    batcher = MicroBatcher(UpvoteModel.predict_records, max_batch=settings.max_batch)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            holder.load(settings.model_version)
        except Exception as error:  # keep running: /health says 503 until /admin/reload works
            log.error("no model loaded at start-up: %s", error)
        flusher = asyncio.create_task(flush_every(predlog, FLUSH_SECONDS))
        yield
        flusher.cancel()
        predlog.close()

    app = FastAPI(
        title="upvote",
        summary="Predict Hacker News upvotes from a story title.",
        lifespan=lifespan,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.state.holder = holder
    app.state.predlog = predlog
    app.state.settings = settings

    async def current_model() -> UpvoteModel:  # async: no thread-pool hop per request
        return holder.model  # read once per request: a reload never swaps it mid-request

    Model = Annotated[UpvoteModel, Depends(current_model)]

    def predict(model: UpvoteModel, stories: list[dict[str, Any]]) -> list[Prediction]:
        rows = [Prediction(**row) for row in model.predict_records(stories)]
        for row in rows:
            metrics.predictions.observe(row.predicted_score)
        return rows

    @app.exception_handler(ModelNotLoaded)
    async def model_not_loaded(request: Request, error: ModelNotLoaded) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=503)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)  # the traceback stays in the log
        return JSONResponse({"detail": "internal server error"}, status_code=500)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/ping", tags=["mlx"])
    async def ping() -> str:
        """Liveness: always "ok" while the process runs (also the benchmark's no-op endpoint)."""
        return "ok"

    @app.get("/version", tags=["mlx"])
    def version(model: Model) -> VersionOut:
        return VersionOut(version=model.version)

    @app.post(
        "/how_many_upvotes",
        tags=["mlx"],
        response_model=HowManyUpvotesOut,
        openapi_extra=request_body_schema(HowManyUpvotesIn),
    )
    async def how_many_upvotes(request: Request) -> Response:
        """The hot path: async, micro-batched with concurrent requests (see batching.py), and
        lean: the body is validated by pydantic straight from the JSON bytes (the same schema
        and 422 as a declared body, without FastAPI's per-request body machinery), the model is
        read without a dependency and the answer serialized in one step."""
        start = time.perf_counter()
        try:
            body = HowManyUpvotesIn.model_validate_json(await request.body())
        except ValidationError as error:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
            ) from None
        model = holder.model  # read once: a reload never swaps it mid-request
        story = {"title": body.title, "by": body.author, "time": body.timestamp}  # url: unknown
        upvotes = (await batcher.predict(model, story))["predicted_score"]
        metrics.predictions.observe(upvotes)
        latency_ms = (time.perf_counter() - start) * 1000
        predlog.append(model.version, body, upvotes, latency_ms)
        return json_response(HowManyUpvotesOut(upvotes=upvotes))

    @app.get("/logs", tags=["mlx"])
    def logs(model: Model, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> LogsOut:
        """The newest prediction log records of the model now serving."""
        return LogsOut(logs=predlog.tail(model.version, limit))

    @app.post("/predict", tags=["api"])
    def predict_batch(body: PredictIn, model: Model) -> PredictOut:
        if len(body.stories) > settings.max_batch:
            raise HTTPException(
                422,
                [
                    {
                        "loc": ["body", "stories"],
                        "type": "too_long",
                        "msg": f"at most {settings.max_batch} stories per request",
                    }
                ],
            )
        start = time.perf_counter()
        rows = predict(model, [_model_input(story) for story in body.stories])
        latency_ms = (time.perf_counter() - start) * 1000
        for story, row in zip(body.stories, rows, strict=True):
            predlog.append(model.version, story, row.predicted_score, latency_ms / len(rows))
        return PredictOut(version=model.version, predictions=rows)

    @app.post("/explain", tags=["api"])
    def explain(story: Story, model: Model) -> ExplainOut:
        """Score one story, place it among real stories, and show what moved the prediction:
        each word of the title, the domain's and author's track record, the time, the form."""
        start = time.perf_counter()
        features = _model_input(story)
        row = predict(model, [features])[0]
        explanation = model.explain(features)
        details = model.describe(features)
        predlog.append(
            model.version, story, row.predicted_score, (time.perf_counter() - start) * 1000
        )
        return ExplainOut(
            version=model.version,
            prediction=row,
            percentile=float(model.percentile(row.predicted_score)),
            words=[WordContribution(word=w, contribution=c) for w, c in explanation["words"]],
            factors=[
                FactorContribution(factor=f, detail=details.get(f, ""), contribution=c)
                for f, c in explanation["factors"]
            ],
            max_words_read=model.featurizer.config.max_tokens,
        )

    @app.get("/similar", tags=["api"])
    def similar(
        model: Model,
        word: Annotated[str, Query(min_length=1, max_length=100)],
        topn: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> SimilarOut:
        """Nearest tokens to ``word`` in the model's embedding space.

        SentencePiece marks a word's first piece with "▁", so "python" is looked up as
        "▁python" first (the whole word), then as the bare piece: users type words, not pieces.
        """
        vectors = model.vectors
        candidates = (f"\u2581{word}", word, f"\u2581{word.lower()}", word.lower())
        key = next((c for c in candidates if c in vectors), None)
        if key is None:
            raise HTTPException(404, f"word {word!r} is not in the model's vocabulary")
        pairs = vectors.most_similar(positive=[key], topn=topn)
        return SimilarOut(
            word=key, similar=[SimilarWord(token=t, similarity=float(s)) for t, s in pairs]
        )

    @app.get("/health", tags=["ops"], responses={503: {"model": HealthOut}})
    def health() -> Any:
        if not holder.loaded:
            return JSONResponse(
                HealthOut(
                    status="no model", model_loaded=False, version=None, release=settings.release
                ).model_dump(),
                status_code=503,
            )
        return HealthOut(
            status="ok", model_loaded=True, version=holder.model.version, release=settings.release
        )

    @app.get("/metrics", tags=["ops"])
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/admin/reload", tags=["ops"])
    def reload(
        body: ReloadIn | None = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> ReloadOut:
        """Load a registry version (``latest`` by default) and swap it in once it works.

        Needs ``Authorization: Bearer <UPVOTE_ADMIN_TOKEN>``; without a configured token reloads
        are disabled. A bundle that fails to load or to score is refused: the old model stays.
        """
        expected = settings.admin_token
        if not expected:
            raise HTTPException(403, "reload is disabled: set UPVOTE_ADMIN_TOKEN")
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(401, "wrong or missing admin token")
        wanted = (body or ReloadIn()).version
        try:
            previous, new = holder.load(wanted)
        except Exception as error:
            log.warning("refused model %s: %s", wanted, error)
            raise HTTPException(
                409,
                f"model {wanted!r} refused, still serving the old one: "
                f"{type(error).__name__}: {error}",
            ) from error
        return ReloadOut(previous=previous, version=new)

    return app
