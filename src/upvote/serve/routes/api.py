"""The JSON API: ``/predict`` (a batch), ``/explain`` (one story, and why) and ``/similar``."""

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from upvote.model.bundle import UpvoteModel
from upvote.serve.body import json_body, request_body_schema
from upvote.serve.deps import AppMetrics, Drift, Model, PredLog, Settings
from upvote.serve.drift import DriftMonitor
from upvote.serve.metrics import Metrics
from upvote.serve.schemas import (
    ExplainOut,
    FactorContribution,
    PredictIn,
    Prediction,
    PredictOut,
    SimilarOut,
    SimilarWord,
    Story,
    WordContribution,
    error_responses,
)

router = APIRouter(tags=["api"])


def model_input(story: Story) -> dict[str, Any]:
    """A story as the model reads it. ``url`` only when the client sent the field: an explicit
    null or "" is a text post (Ask HN...), a missing field an unknown url (features.py)."""
    out = {"title": story.title, "by": story.by, "time": story.time}
    if "url" in story.model_fields_set:
        out["url"] = story.url
    return out


def score(
    model: UpvoteModel, metrics: Metrics, drift: DriftMonitor, stories: list[dict[str, Any]]
) -> list[Prediction]:
    rows = [Prediction(**row) for row in model.predict_records(stories)]
    for story, row in zip(stories, rows, strict=True):
        metrics.predictions.observe(row.predicted_score)
        drift.record(model, story, row.predicted_score)
    return rows


@router.post(
    "/predict",
    openapi_extra=request_body_schema(PredictIn),
    responses=error_responses(413, 415, 422, 503),
)
def predict_batch(
    body: Annotated[PredictIn, Depends(json_body(PredictIn))],
    model: Model,
    settings: Settings,
    metrics: AppMetrics,
    predlog: PredLog,
    drift: Drift,
) -> PredictOut:
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
    rows = score(model, metrics, drift, [model_input(story) for story in body.stories])
    latency_ms = (time.perf_counter() - start) * 1000
    for story, row in zip(body.stories, rows, strict=True):
        interval = (row.p10, row.p90)
        predlog.append(model.version, story, row.predicted_score, latency_ms / len(rows), interval)
    return PredictOut(version=model.version, predictions=rows)


@router.post(
    "/explain",
    openapi_extra=request_body_schema(Story),
    responses=error_responses(413, 415, 422, 503),
)
def explain(
    story: Annotated[Story, Depends(json_body(Story))],
    model: Model,
    metrics: AppMetrics,
    predlog: PredLog,
    drift: Drift,
) -> ExplainOut:
    """Score one story, place it among real stories, and show what moved the prediction:
    each word of the title, the domain's and author's track record, the time, the form."""
    start = time.perf_counter()
    features = model_input(story)
    row = score(model, metrics, drift, [features])[0]
    explanation = model.explain(features)
    details = model.describe(features)
    latency_ms = (time.perf_counter() - start) * 1000
    predlog.append(model.version, story, row.predicted_score, latency_ms, (row.p10, row.p90))
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


@router.get("/similar", responses=error_responses(404, 422, 503))
def similar(
    model: Model,
    word: Annotated[str, Query(min_length=1, max_length=100)],
    topn: Annotated[int, Query(ge=1, le=100, description="How many neighbours.")] = 10,
    k: Annotated[int | None, Query(ge=1, le=100, description="Same as topn.")] = None,
) -> SimilarOut:
    """Nearest tokens to ``word`` in the model's embedding space (``topn``, or ``k``, of them).

    SentencePiece marks a word's first piece with "▁", so "python" is looked up as
    "▁python" first (the whole word), then as the bare piece: users type words, not pieces.
    """
    vectors = model.vectors
    candidates = (f"\u2581{word}", word, f"\u2581{word.lower()}", word.lower())
    key = next((c for c in candidates if c in vectors), None)
    if key is None:
        raise HTTPException(404, f"word {word!r} is not in the model's vocabulary")
    pairs = vectors.most_similar(positive=[key], topn=topn if k is None else k)
    return SimilarOut(
        word=key, similar=[SimilarWord(token=t, similarity=float(s)) for t, s in pairs]
    )
