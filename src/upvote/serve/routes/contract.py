"""The MLX course contract: ``/ping``, ``/version``, ``/how_many_upvotes`` and ``/logs``."""

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from upvote.serve.deps import Model, PredLog
from upvote.serve.schemas import HowManyUpvotesIn, HowManyUpvotesOut, LogsOut, VersionOut

router = APIRouter(tags=["mlx"])


def request_body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body a route validates itself, so /docs shows it as for a declared body."""
    schema = {"application/json": {"schema": model.model_json_schema()}}
    return {"requestBody": {"required": True, "content": schema}}


def json_response(body: BaseModel) -> Response:
    """``body`` as JSON, skipping FastAPI's validation of a returned model (already valid)."""
    return Response(body.model_dump_json(), media_type="application/json")


@router.get("/ping")
async def ping() -> str:
    """Liveness: always "ok" while the process runs (also the benchmark's no-op endpoint)."""
    return "ok"


@router.get("/version")
def version(model: Model) -> VersionOut:
    return VersionOut(version=model.version)


@router.post(
    "/how_many_upvotes",
    response_model=HowManyUpvotesOut,
    openapi_extra=request_body_schema(HowManyUpvotesIn),
)
async def how_many_upvotes(request: Request) -> Response:
    """The hot path: async, micro-batched with concurrent requests (see batching.py), and
    lean: the body is validated by pydantic straight from the JSON bytes (the same schema
    and 422 as a declared body, without FastAPI's per-request body machinery), the model and
    the shared objects are read from ``app.state`` without dependencies, and the answer is
    serialized in one step."""
    start = time.perf_counter()
    try:
        body = HowManyUpvotesIn.model_validate_json(await request.body())
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None
    state = request.app.state
    model = state.holder.model  # read once: a reload never swaps it mid-request
    story = {"title": body.title, "by": body.author, "time": body.timestamp}  # url: unknown
    upvotes = (await state.batcher.predict(model, story))["predicted_score"]
    state.metrics.predictions.observe(upvotes)
    latency_ms = (time.perf_counter() - start) * 1000
    state.predlog.append(model.version, body, upvotes, latency_ms)
    return json_response(HowManyUpvotesOut(upvotes=upvotes))


@router.get("/logs")
def logs(
    model: Model, predlog: PredLog, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
) -> LogsOut:
    """The newest prediction log records of the model now serving."""
    return LogsOut(logs=predlog.tail(model.version, limit))
