"""What the routes share, kept on ``app.state`` by ``create_app`` and handed to each route as a
FastAPI dependency (the layout of FastAPI's "Bigger Applications" guide).

The dependencies are ``async``: FastAPI runs a sync dependency on the thread pool, a hop per
request for a mere attribute read.
"""

from typing import Annotated

from fastapi import Depends, Request

from upvote.model.bundle import UpvoteModel
from upvote.serve.config import ServeSettings
from upvote.serve.drift import DriftMonitor
from upvote.serve.metrics import Metrics
from upvote.serve.predlog import PredictionLog
from upvote.serve.state import ModelHolder


async def current_model(request: Request) -> UpvoteModel:
    """The model now serving, read once per request: a reload never swaps it mid-request."""
    return request.app.state.holder.model


async def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


async def get_predlog(request: Request) -> PredictionLog:
    return request.app.state.predlog


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_drift(request: Request) -> DriftMonitor:
    return request.app.state.drift


async def get_settings(request: Request) -> ServeSettings:
    return request.app.state.settings


Model = Annotated[UpvoteModel, Depends(current_model)]
Holder = Annotated[ModelHolder, Depends(get_holder)]
PredLog = Annotated[PredictionLog, Depends(get_predlog)]
AppMetrics = Annotated[Metrics, Depends(get_metrics)]
Settings = Annotated[ServeSettings, Depends(get_settings)]
Drift = Annotated[DriftMonitor, Depends(get_drift)]
