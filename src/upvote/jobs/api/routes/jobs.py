"""`/v1/embeddings/jobs`: submit, follow, list, cancel and delete word2vec jobs, and read their
vectors, neighbours and evaluation.

A caller sees only its own jobs: another token's job answers 404, as one that never existed.
The database work of each route runs on the thread pool (sync routes, or run_in_threadpool in
the one async route, which streams uploads).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from upvote.jobs import queue, store
from upvote.jobs.api.deps import (
    Artifacts,
    Caller,
    Conn,
    CurrentCaller,
    Pool,
    PooledCaller,
    Queue,
    Settings,
    Vectors,
)
from upvote.jobs.api.models import (
    JobCreate,
    JobCreated,
    JobList,
    JobOptions,
    JobView,
    SimilarOut,
)
from upvote.jobs.api.upload import UploadError, receive
from upvote.jobs.api.vectors import TEXT, file_response
from upvote.jobs.options import UPLOAD_PREFIX
from upvote.jobs.store import FINAL, State

router = APIRouter(prefix="/v1/embeddings", tags=["jobs"])
OWNER_LOCK = 0x75706A71  # first key of the per-owner advisory lock of job creation ("upjq")
UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/JobCreate"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "options": {
                            "type": "string",
                            "description": 'JSON of JobOptions, e.g. {"dim": 100}',
                        },
                    },
                }
            },
        },
    }
}


def field_error(status: int, field: tuple[str, ...], message: str) -> HTTPException:
    """An error naming the field it concerns, shaped like a 422's detail."""
    return HTTPException(status, detail=[{"loc": list(field), "msg": message}])


def invalid(error: ValidationError, *prefix: str) -> RequestValidationError:
    """A pydantic error of a body parsed by hand as FastAPI's own 422 (fields under `prefix`)."""
    return RequestValidationError(
        [{**e, "loc": (*prefix, *e["loc"])} for e in error.errors(include_url=False)]
    )


def own_job(conn: psycopg.Connection, caller: Caller, job_id: int) -> store.Job:
    """The caller's job, or 404 (also for another token's job, and a deleted one)."""
    job = store.get_job(conn, job_id)
    if job is None or job.owner != caller.name or job.deleted is not None:
        raise HTTPException(404, detail=f"no job {job_id}")
    return job


def job_url(request: Request, job_id: int) -> str:
    return str(request.url_for("get_job", job_id=job_id))


def check_jobs_quota(conn: psycopg.Connection, caller: Caller) -> int:
    """429 when the caller runs its maximum of jobs or has no bytes left; the bytes left."""
    running, used = store.usage(conn, caller.name)
    if running >= caller.quota.max_concurrent_jobs:
        raise HTTPException(
            429,
            detail=f"quota: {running} jobs not finished, the most this token may have at once "
            f"is {caller.quota.max_concurrent_jobs}; wait for one to finish or cancel one",
        )
    left = caller.quota.max_bytes - used
    if left <= 0:
        raise HTTPException(
            429,
            detail=f"quota: the corpora of this token's jobs hold {used} bytes of its "
            f"{caller.quota.max_bytes}; delete jobs to free some",
        )
    return left


async def capped_body(request: Request, max_bytes: int) -> bytes:
    """The (JSON) body, read no further than max_bytes: a 413 past them."""
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise field_error(413, ("body",), f"a JSON body is at most {max_bytes} bytes")
    return bytes(body)


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobCreated,
    openapi_extra=UPLOAD_DOC,
    responses={413: {"description": "upload too large"}, 429: {"description": "over quota"}},
)
async def create_job(
    request: Request,
    caller: PooledCaller,
    settings: Settings,
    pool: Pool,
    app_queue: Queue,
    artifacts: Artifacts,
) -> JSONResponse:
    """A job for a corpus by URL (JSON: url, options) or uploaded (multipart: file, options)."""

    def connected(work, *args):
        with pool.connection(timeout=settings.jobs_db_timeout_s) as conn:
            return work(conn, *args)

    left = await run_in_threadpool(connected, check_jobs_quota, caller)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        job_id = await _create_uploaded(
            request, caller, settings, left, connected, app_queue, artifacts
        )
    else:
        body = await capped_body(request, settings.jobs_max_json_bytes)
        try:
            spec = JobCreate.model_validate_json(body or b"null")
        except ValidationError as error:
            raise invalid(error, "body") from None
        job_id = await run_in_threadpool(
            connected, _create_and_defer, app_queue, caller, str(spec.url), spec.options, None,
            None,
        )  # fmt: skip
    created = JobCreated(id=job_id, url=job_url(request, job_id), state=State.queued)
    return JSONResponse(created.model_dump(mode="json"), status_code=202)


async def _create_uploaded(request, caller, settings, left, connected, app_queue, artifacts):
    limit = min(settings.jobs_max_upload_bytes, left)
    why = "the upload limit" if limit == settings.jobs_max_upload_bytes else "this token's quota"
    try:
        upload = await receive(request, artifacts, limit, why)
    except UploadError as error:
        raise field_error(error.status, ("body", error.field), error.message) from None
    try:
        try:
            options = JobOptions.model_validate_json(upload.options or "{}")
        except ValidationError as error:
            raise invalid(error, "body", "options") from None
        corpus = UPLOAD_PREFIX + upload.name
        return await run_in_threadpool(
            connected, _create_and_defer, app_queue, caller, corpus, options, upload, artifacts,
        )  # fmt: skip
    finally:  # moved into the job's folder unless it failed
        await run_in_threadpool(artifacts.remove, upload.key)


def _create_and_defer(
    conn, app_queue, caller: Caller, corpus: str, options: JobOptions, upload, artifacts
) -> int:
    """Record the job, put an upload in its folder (<store>/<id>/upload/NAME), queue it.

    The quota is checked again here, under a lock on the owner held until the row is written:
    two requests at once cannot both take the last free slot (the check before the upload only
    spares a client sending a body that would be refused)."""
    size = upload.size if upload is not None else None
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (OWNER_LOCK, caller.name))
        left = check_jobs_quota(conn, caller)
        if size is not None and size > left:
            raise field_error(413, ("body", "file"), f"upload larger than this token's quota "
                              f"({left} bytes left)")  # fmt: skip
        job = queue.create(conn, corpus, options.given(), caller.name, size)
    try:
        if upload is not None:
            artifacts.move(upload.key, f"{job.id}/upload/{upload.name}")
        queue.defer(app_queue, conn, job.id)
    except Exception:
        store.set_state(conn, job.id, State.failed, error="could not queue the job")
        raise
    return job.id


@router.get("/jobs/{job_id}", response_model=JobView, responses={404: {}})
def get_job(job_id: int, request: Request, conn: Conn, caller: CurrentCaller) -> JobView:
    """State, progress (fraction, words/s, loss, ETA), worker, timings, error."""
    return JobView.of(own_job(conn, caller, job_id), job_url(request, job_id))


@router.get("/jobs", response_model=JobList)
def list_jobs(
    request: Request,
    conn: Conn,
    caller: CurrentCaller,
    settings: Settings,
    state: State | None = None,
    limit: Annotated[int | None, Query(ge=1, le=500)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobList:
    """The caller's jobs, newest first, optionally in one state; `next_offset` pages on."""
    limit = limit or settings.jobs_page_size
    jobs = store.list_jobs(conn, caller.name, state, limit, offset)
    total = store.count_jobs(conn, caller.name, state)
    views = [JobView.of(job, job_url(request, job.id)) for job in jobs]
    more = offset + len(jobs) < total
    return JobList(jobs=views, total=total, next_offset=offset + len(jobs) if more else None)


@router.post("/jobs/{job_id}/cancel", response_model=JobView, responses={404: {}})
def cancel_job(job_id: int, request: Request, conn: Conn, caller: CurrentCaller) -> JobView:
    """A queued job never runs; a running one stops within about a second of training (a
    finished job stays as it is)."""
    own_job(conn, caller, job_id)
    return JobView.of(store.cancel_job(conn, job_id), job_url(request, job_id))


@router.delete("/jobs/{job_id}", status_code=204, responses={404: {}})
def delete_job(job_id: int, conn: Conn, caller: CurrentCaller, artifacts: Artifacts) -> Response:
    """Cancel the job if it has not finished, remove its files and forget it (404 from then on).
    A worker still running it stops at its next progress report and removes whatever it wrote
    meanwhile (queue.run_job). Its bytes no longer count against the quota."""
    own_job(conn, caller, job_id)
    store.mark_deleted(conn, job_id)
    artifacts.remove_job(job_id)
    return Response(status_code=204)


def check_succeeded(conn, caller: Caller, job_id: int) -> None:
    """404 for another's job, 409 for one without vectors (yet)."""
    job = own_job(conn, caller, job_id)
    if job.state is not State.succeeded:
        raise HTTPException(409, detail=f"job {job_id} is {job.state.value}, not succeeded")


@router.get(
    "/jobs/{job_id}/vectors",
    response_class=FileResponse,
    responses={200: {"content": {"text/plain": {}, "application/octet-stream": {}}}, 409: {}},
)
def vectors(
    job_id: int,
    conn: Conn,
    caller: CurrentCaller,
    artifacts: Artifacts,
    cache: Vectors,
    format: Literal["txt", "bin"] = "txt",
) -> Response:
    """The vectors in word2vec's text or binary format (gensim's
    `KeyedVectors.load_word2vec_format(path, binary=...)` reads either), streamed from the
    artifact store."""
    check_succeeded(conn, caller, job_id)
    if format == "txt":
        return file_response(artifacts, f"{job_id}/{TEXT}", "text/plain; charset=utf-8",
                             f"job-{job_id}-vectors.txt")  # fmt: skip
    return file_response(artifacts, cache.binary(artifacts, job_id), "application/octet-stream",
                         f"job-{job_id}-vectors.bin")  # fmt: skip


@router.get("/jobs/{job_id}/similar", response_model=SimilarOut, responses={404: {}, 409: {}})
def similar(
    job_id: int,
    conn: Conn,
    caller: CurrentCaller,
    artifacts: Artifacts,
    cache: Vectors,
    word: Annotated[str, Query(min_length=1, max_length=200)],
    topn: Annotated[int, Query(ge=1, le=100)] = 10,
) -> SimilarOut:
    """The topn words nearest to `word` by cosine similarity."""
    check_succeeded(conn, caller, job_id)
    vectors = cache.get(artifacts, f"{job_id}/{TEXT}")
    if word not in vectors:
        raise field_error(404, ("query", "word"), f"{word!r} is not in the job's vocabulary")
    hits = vectors.most_similar(word, topn=topn)
    return SimilarOut(word=word, similar=[{"word": w, "similarity": s} for w, s in hits])


@router.get("/jobs/{job_id}/evaluation", responses={404: {}, 409: {}})
def evaluation(job_id: int, conn: Conn, caller: CurrentCaller, artifacts: Artifacts) -> Any:
    """The results of the evaluation sets the job asked for (its evaluation.json)."""
    job = own_job(conn, caller, job_id)
    if not job.options.get("evaluation"):
        raise HTTPException(404, detail="no evaluation was requested for this job")
    if job.state not in FINAL:
        raise HTTPException(409, detail=f"job {job_id} is {job.state.value}: not evaluated yet")
    key = f"{job_id}/evaluation.json"
    if not artifacts.exists(key):
        raise HTTPException(404, detail=f"job {job_id} {job.state.value} without an evaluation")
    return json.loads(artifacts.read_text(key))
