"""The bodies of the jobs API (pydantic): what a client sends and what it gets back.

JobOptions mirrors `upvote embed train`'s options with bounds; an option left out keeps that
command's default (Word2VecParams), so no default is repeated here. Unknown fields are refused
(a 422 naming them) rather than ignored: a typo must not train with a default silently.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from upvote.jobs.store import Job, State

EVALUATION_SETS = ("analogy", "wordsim353", "simlex999")  # shipped by the evaluation module


class JobOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Literal["sg", "cbow"] | None = Field(None, description="skip-gram or CBOW (sg)")
    dim: int | None = Field(None, ge=1, le=1000, description="vector size")
    window: int | None = Field(None, ge=1, le=50, description="maximum context window")
    negative: int | None = Field(None, ge=0, le=50, description="noise words per example")
    min_count: int | None = Field(None, ge=1, description="drop words rarer than this")
    sample: float | None = Field(None, ge=0, description="sub-sampling threshold")
    epochs: int | None = Field(None, ge=1, le=100, description="passes over the corpus")
    tokenizer: Literal["word", "sentencepiece"] | None = None
    column: str | None = Field(
        None, min_length=1, max_length=200, description="Parquet corpus: the text column"
    )
    evaluation: list[Literal["analogy", "wordsim353", "simlex999"]] | None = Field(
        None, max_length=len(EVALUATION_SETS), description="evaluation sets run at the end"
    )

    def given(self) -> dict:
        """The options set, as a job's `options` (options.job_params reads them)."""
        return self.model_dump(exclude_none=True)


class JobCreate(BaseModel):
    """A corpus by URL (http or https; the worker fetches it)."""

    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(
        description="text, .gz/.bz2/.xz, .zip/.tar of text files, or Parquet (with column)"
    )
    options: JobOptions = Field(default_factory=JobOptions)


class JobCreated(BaseModel):
    id: int
    url: str  # the job's own URL
    state: State


class Progress(BaseModel):
    model_config = ConfigDict(extra="allow")  # the worker may report more (resumed_from_epoch)

    fraction: float | None = None
    words_per_s: float | None = None
    loss: float | None = None
    eta_s: float | None = None


class JobView(BaseModel):
    id: int
    url: str
    state: State
    corpus: str  # the URL, or "upload:NAME"
    corpus_bytes: int | None
    options: dict[str, Any]
    progress: Progress
    worker: str | None
    attempts: int
    error: str | None  # why it failed
    created: datetime
    started: datetime | None
    finished: datetime | None
    duration_s: float | None  # started to finished

    @classmethod
    def of(cls, job: Job, url: str) -> "JobView":
        duration = (
            (job.finished - job.started).total_seconds() if job.started and job.finished else None
        )
        return cls(
            id=job.id, url=url, state=job.state, corpus=job.corpus,
            corpus_bytes=job.corpus_bytes, options=job.options,
            progress=Progress.model_validate(job.progress), worker=job.worker,
            attempts=job.attempts, error=job.error, created=job.created, started=job.started,
            finished=job.finished, duration_s=duration,
        )  # fmt: skip


class JobList(BaseModel):
    jobs: list[JobView]
    total: int  # the caller's jobs in this state (all states: every job not deleted)
    next_offset: int | None  # the next page's offset; None on the last page


class Neighbour(BaseModel):
    word: str
    similarity: float


class SimilarOut(BaseModel):
    word: str
    similar: list[Neighbour]


class HealthOut(BaseModel):
    status: Literal["ok", "database unreachable"]
