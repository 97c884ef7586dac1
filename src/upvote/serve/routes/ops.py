"""Operations: ``/health``, ``/metrics`` (Prometheus), ``/monitoring`` (drift) and ``/admin/reload``
(a hot model swap)."""

import logging
import secrets
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from upvote.serve.body import json_body, request_body_schema
from upvote.serve.deps import AppMetrics, Drift, Holder, PredLog, Settings
from upvote.serve.schemas import HealthOut, MonitoringOut, ReloadIn, ReloadOut, error_responses

log = logging.getLogger(__name__)
router = APIRouter(tags=["ops"])


@router.get("/health", responses={503: {"model": HealthOut, "description": "no model loaded"}})
def health(holder: Holder, settings: Settings, predlog: PredLog) -> Any:
    """Readiness: 503 while no model is loaded. A prediction log that cannot be written (full
    disk) does not stop predictions: the answer stays 200, with status "degraded" and counts."""
    log_state = {"log_errors": predlog.errors, "log_dropped": predlog.dropped}
    if not holder.loaded:
        return JSONResponse(
            HealthOut(
                status="no model",
                model_loaded=False,
                version=None,
                release=settings.release,
                **log_state,
            ).model_dump(),
            status_code=503,
        )
    return HealthOut(
        status="degraded" if predlog.failing else "ok",
        model_loaded=True,
        version=holder.model.version,
        release=settings.release,
        **log_state,
    )


@router.get("/metrics")
def prometheus(metrics: AppMetrics) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/monitoring")
def monitoring(drift: Drift) -> MonitoringOut:
    """Drift per feature of the newest scored stories against the reference profile of the
    model serving (its validation split): PSI, KS, thresholds and alerts, as the
    ``upvote_drift_*`` gauges of ``/metrics``."""
    return MonitoringOut.model_validate(asdict(drift.report()))


async def require_admin(
    settings: Settings, authorization: Annotated[str | None, Header()] = None
) -> None:
    """The admin token check; a dependency declared before the body, so it runs first."""
    expected = settings.admin_token
    if not expected:
        raise HTTPException(403, "reload is disabled: set UPVOTE_ADMIN_TOKEN")
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "wrong or missing admin token")


@router.post(
    "/admin/reload",
    openapi_extra=request_body_schema(ReloadIn, required=False),
    responses=error_responses(401, 403, 409, 413, 415, 422),
)
def reload(
    _: Annotated[None, Depends(require_admin)],
    body: Annotated[ReloadIn | None, Depends(json_body(ReloadIn, optional=True))],
    holder: Holder,
) -> ReloadOut:
    """Load a registry version (by default the configured one, ``champion``) and swap it in
    once it works.

    Needs ``Authorization: Bearer <UPVOTE_ADMIN_TOKEN>``; without a configured token reloads
    are disabled. The token is checked before the body is read. A bundle that fails to load or
    to score is refused: the old model stays.
    """
    wanted = (body or ReloadIn()).version or holder.version
    try:
        previous, new = holder.load(wanted)
    except Exception as error:
        log.warning("refused model %s: %s", wanted, error)
        reason = str(error).replace(str(holder.models_dir), "<models>")  # no server paths
        raise HTTPException(
            409,
            f"model {wanted!r} refused, still serving the old one: {type(error).__name__}: "
            f"{reason}"[:500],
        ) from error
    return ReloadOut(previous=previous, version=new)
