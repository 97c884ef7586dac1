"""Operations: `/health` (is the job database reachable) and `/metrics` (Prometheus, no token:
the counts say nothing about whose jobs they are)."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from upvote.jobs.api.deps import Pool, Settings
from upvote.jobs.api.models import HealthOut

router = APIRouter(tags=["ops"])


@router.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
def health(pool: Pool, settings: Settings) -> Any:
    try:
        with pool.connection(timeout=settings.jobs_db_timeout_s) as conn:
            conn.execute("SELECT 1")
    except Exception:
        return JSONResponse({"status": "database unreachable"}, status_code=503)
    return HealthOut(status="ok")


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
