"""Operations: ``/health``, ``/metrics`` (Prometheus) and ``/admin/reload`` (a hot model swap)."""

import logging
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from upvote.serve.deps import AppMetrics, Holder, Settings
from upvote.serve.schemas import HealthOut, ReloadIn, ReloadOut

log = logging.getLogger(__name__)
router = APIRouter(tags=["ops"])


@router.get("/health", responses={503: {"model": HealthOut}})
def health(holder: Holder, settings: Settings) -> Any:
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


@router.get("/metrics")
def prometheus(metrics: AppMetrics) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.post("/admin/reload")
def reload(
    holder: Holder,
    settings: Settings,
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
            f"model {wanted!r} refused, still serving the old one: {type(error).__name__}: {error}",
        ) from error
    return ReloadOut(previous=previous, version=new)
