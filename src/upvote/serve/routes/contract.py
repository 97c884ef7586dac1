"""The MLX course contract: ``/ping``, ``/version``, ``/how_many_upvotes`` and ``/logs``."""

import math
import time
from typing import Annotated

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from upvote.serve.body import read_json, request_body_schema
from upvote.serve.deps import Model, PredLog
from upvote.serve.schemas import (
    HowManyUpvotesIn,
    HowManyUpvotesOut,
    LogsOut,
    VersionOut,
    error_responses,
)

router = APIRouter(tags=["mlx"])
MAX_LOGS = 1000  # records per /logs answer
LOGS_AT_ONCE = 2  # /logs calls reading files at the same time; more wait their turn


def upvotes_response(upvotes: float) -> Response:
    """``HowManyUpvotesOut`` as JSON, written directly: the same number (``repr`` is the shortest
    string that parses back to the float, as pydantic's) without building and serializing a
    model on every request; ``null`` for a non-finite one, as pydantic writes it."""
    number = repr(upvotes) if math.isfinite(upvotes) else "null"
    return Response(f'{{"upvotes":{number}}}', media_type="application/json")


@router.get("/ping")
async def ping() -> str:
    """Liveness: always "ok" while the process runs (also the benchmark's no-op endpoint)."""
    return "ok"


@router.get("/version", responses=error_responses(503))
def version(model: Model) -> VersionOut:
    return VersionOut(version=model.version)


@router.post(
    "/how_many_upvotes",
    response_model=HowManyUpvotesOut,
    openapi_extra=request_body_schema(HowManyUpvotesIn),
    responses=error_responses(413, 415, 422, 503),
)
async def how_many_upvotes(request: Request) -> Response:
    """The hot path: async, micro-batched with concurrent requests (see batching.py), and
    lean: the body is validated by pydantic straight from the JSON bytes (the same schema
    and 422 as a declared body, without FastAPI's per-request body machinery), the model and
    the shared objects are read from ``app.state`` without dependencies, and the answer is
    serialized in one step."""
    start = time.perf_counter()
    body = await read_json(request, HowManyUpvotesIn)
    state = request.app.state
    model = state.holder.model  # read once: a reload never swaps it mid-request
    story = {"title": body.title, "by": body.author, "time": body.timestamp}  # url: unknown
    predicted = await state.batcher.predict(model, story)
    upvotes = predicted["predicted_score"]
    state.metrics.predictions.observe(upvotes)
    state.drift.record(model, story, upvotes)
    latency_ms = (time.perf_counter() - start) * 1000
    state.predlog.append(model.version, body, upvotes, latency_ms)  # the contract's fields only
    return upvotes_response(upvotes)


@router.get("/logs", response_model=LogsOut, responses=error_responses(422, 503))
async def logs(
    request: Request,
    model: Model,
    predlog: PredLog,
    limit: Annotated[int, Query(ge=1, le=MAX_LOGS)] = MAX_LOGS,
) -> Response:
    """The newest prediction log records of the model now serving (unreadable lines, torn by a
    crash or a full disk, are skipped and counted).

    The files are read on a worker thread, at most LOGS_AT_ONCE calls at a time, and the
    records are sent as they are stored (each line checked to parse): no re-serialization."""
    state = request.app.state
    if getattr(state, "logs_limiter", None) is None:  # made here: it needs the event loop
        state.logs_limiter = anyio.CapacityLimiter(LOGS_AT_ONCE)
    lines, skipped = await anyio.to_thread.run_sync(
        predlog.read_tail, model.version, limit, limiter=state.logs_limiter
    )
    body = b'{"logs":[' + b",".join(lines) + b'],"skipped":' + str(skipped).encode() + b"}"
    return Response(body, media_type="application/json")
