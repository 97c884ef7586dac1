"""Request and response bodies of every endpoint: bad input becomes a 422 naming the field."""

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

# The first Hacker News story is from October 2006; a story cannot come from far in the future.
EARLIEST = datetime(2006, 10, 1, tzinfo=UTC)
MAX_TITLE_CHARS = 300  # also ServeSettings.max_title_chars' default; the schema is the hard cap


def latest_allowed(now: datetime | None = None) -> datetime:
    """One year from ``now`` (from a 29 February: 28 February of the next year)."""
    now = now or datetime.now(UTC)
    return now.replace(year=now.year + 1, day=min(now.day, 28) if now.month == 2 else now.day)


# A bound computed earlier: never later than ``latest_allowed()`` now (time only moves on), so
# a timestamp within it is valid without reading the clock; one past it is checked afresh (the
# first one too: EARLIEST, not a clock read at import).
_latest_known = [EARLIEST]


def _check_timestamp(value: datetime | None) -> datetime | None:
    """Every request with a timestamp runs this: the common case reads no clock."""
    if value is None:
        return None
    if value.tzinfo is None:  # naive times are taken as UTC, like HN's own API
        value = value.replace(tzinfo=UTC)
    if EARLIEST <= value <= _latest_known[0]:
        return value
    _latest_known[0] = latest_allowed()
    if not EARLIEST <= value <= _latest_known[0]:
        raise ValueError("timestamp must lie between 2006-10-01 and one year from now")
    return value


Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE_CHARS)
]
Timestamp = Annotated[datetime | None, AfterValidator(_check_timestamp)]
Text = Annotated[str | None, StringConstraints(max_length=2000)]


class Strict(BaseModel):
    """Unknown fields are errors too: a typo such as ``titel`` must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class HowManyUpvotesIn(Strict):
    """The MLX course contract; ``timestamp`` is ISO 8601 or Unix seconds."""

    author: Text = None
    title: Title
    timestamp: Timestamp = None


class HowManyUpvotesOut(BaseModel):
    upvotes: float


class Story(Strict):
    title: Title
    url: Text = None
    by: Text = None
    time: Timestamp = None
    id: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="The story's Hacker News item id, when known: not read by the model, but "
        "logged, so that `upvote monitor` can score the prediction against the final score.",
    )


class PredictIn(Strict):
    stories: list[Story] = Field(min_length=1)


class Prediction(BaseModel):
    predicted_score: float
    predicted_log1p: float
    p10: float
    p50: float
    p90: float
    p_reach_100: float


class PredictOut(BaseModel):
    version: str
    predictions: list[Prediction]


class WordContribution(BaseModel):
    word: str
    contribution: float = Field(description="prediction minus the prediction without this word")


class FactorContribution(BaseModel):
    factor: str = Field(description="domain history, author history, time or title form")
    detail: str = Field(description="what the model knows of it, e.g. the domain's story count")
    contribution: float = Field(
        description="prediction minus the prediction with this factor at its training average"
    )


class ExplainOut(BaseModel):
    """Contributions are on the log1p(score) scale; positive pushes the prediction up."""

    version: str
    prediction: Prediction
    percentile: float = Field(description="share of real stories (0-100) scoring below this one")
    words: list[WordContribution]
    factors: list[FactorContribution]
    max_words_read: int = Field(description="the model reads only the first pieces of a title")


class SimilarWord(BaseModel):
    token: str
    similarity: float


class SimilarOut(BaseModel):
    word: str
    similar: list[SimilarWord]


class VersionOut(BaseModel):
    version: str


class HealthOut(BaseModel):
    status: str = Field(description='"ok", "degraded" (the prediction log cannot be written) or '
                        '"no model"')  # fmt: skip
    model_loaded: bool
    version: str | None
    release: str | None
    log_errors: int = Field(0, description="prediction log write errors since start")
    log_dropped: int = Field(0, description="prediction records lost to those errors")


class FeatureDriftOut(BaseModel):
    feature: str = Field(description="prediction, title_chars, pieces, oov_share, domain, ...")
    kind: str = Field(description='"continuous" (PSI and KS) or "categorical" (PSI)')
    stories: int = Field(description="stories of the window with a value for this feature")
    psi: float | None = Field(description="population stability index; null: not enough data")
    ks: float | None = Field(description="two-sample KS statistic (continuous features only)")
    psi_threshold: float
    ks_threshold: float | None
    alert: bool = Field(description="PSI or KS over its threshold")
    status: str = Field(description='"ok", "drift" or "not enough data"')


class MonitoringOut(BaseModel):
    """Drift of the recent stories against the reference profile of the model serving."""

    version: str | None = Field(description="the model whose profile is the reference")
    reference: str | None = Field(description="which stories the reference profile describes")
    status: str = Field(description='"ok", "drift", "not enough data", "no reference profile" '
                        'or "no model"')  # fmt: skip
    window: int = Field(description="stories in the window (the newest, of this model)")
    window_size: int = Field(description="at most this many (UPVOTE_DRIFT_WINDOW)")
    min_stories: int = Field(description="fewer stories with a value: no PSI, KS or alert")
    features: list[FeatureDriftOut]


class LogsOut(BaseModel):
    logs: list[dict]
    skipped: int = Field(0, description="unreadable (torn) lines passed over")


class ErrorOut(BaseModel):
    """Every error but a 422: what went wrong, in words."""

    detail: str


class FieldError(BaseModel):
    loc: list[str | int] = Field(description='where: ["body", "stories", 0, "title"]')
    msg: str
    type: str
    input: Any = Field(None, description="the offending input, cut short")
    ctx: dict[str, Any] | None = None


class ValidationErrorOut(BaseModel):
    """A 422: one entry per field that is wrong."""

    detail: list[FieldError]


_ERROR_WORDS = {
    401: "wrong or missing admin token",
    403: "reloads are disabled (no UPVOTE_ADMIN_TOKEN)",
    404: "not found",
    409: "the model was refused; the old one keeps serving",
    413: "body larger than UPVOTE_MAX_BODY_BYTES",
    415: "body is not application/json",
    422: "invalid input: detail names each field",
    503: "no model loaded yet",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that answers ``codes``, for its OpenAPI entry."""
    return {
        code: {
            "model": ValidationErrorOut if code == 422 else ErrorOut,
            "description": _ERROR_WORDS[code],
        }
        for code in codes
    }


class ReloadIn(Strict):
    version: str | None = None  # default: what the service is configured to serve (champion)


class ReloadOut(BaseModel):
    previous: str | None
    version: str
