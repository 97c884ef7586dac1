"""What a job may ask for, checked before it is queued (the API's 422, the CLI's one-line
error) and again by the worker (a row written by hand fails its job instead of its worker), and
where the job database is."""

from __future__ import annotations

from dataclasses import replace

from upvote.embeddings.evaluate import STANDARD_SETS
from upvote.embeddings.params import Word2VecParams
from upvote.settings import get_settings

# the `upvote embed train` options a job may set, and the Word2VecParams field each one sets
OPTION_FIELDS = {
    "dim": "vector_size",
    "window": "window",
    "negative": "negative",
    "min_count": "min_count",
    "sample": "sample",
    "epochs": "epochs",
}
TOKENIZERS = ("word", "sentencepiece")
# options that are no Word2VecParams field; "evaluation": standard sets (embeddings/evaluate.py
# STANDARD_SETS) the worker scores the vectors on after training, into <out>/evaluation.json
OTHER_OPTIONS = ("model", "tokenizer", "column", "evaluation")
# A job's corpus: an http(s) URL (fetched by the worker), "upload:NAME" (a file the API streamed
# to <artifacts>/<id>/upload/NAME), or a local path an operator gave `upvote jobs submit`.
UPLOAD_PREFIX = "upload:"


class JobsError(RuntimeError):
    """A configuration the queue cannot work with (no database URL, bad job options)."""


def database_url(dsn: str | None = None) -> str:
    """The given URL, else UPVOTE_JOBS_DATABASE_URL, else the one `upvote jobs serve` saved for
    its own PostgreSQL (settings.jobs_database_url_file)."""
    settings = get_settings()
    saved = settings.jobs_database_url_file
    dsn = dsn or settings.jobs_database_url or (saved.read_text().strip() if saved.exists() else "")
    if not dsn:
        raise JobsError(
            "no job database: set UPVOTE_JOBS_DATABASE_URL (a PostgreSQL URL) "
            "or start one with `upvote jobs serve`"
        )
    return dsn


def job_params(options: dict) -> tuple[Word2VecParams, str]:
    """(word2vec parameters, tokenizer) of a job's options; unknown or bad ones raise JobsError,
    so a bad submission is refused before it is queued and a bad row fails its job."""
    unknown = sorted(set(options) - set(OPTION_FIELDS) - set(OTHER_OPTIONS))
    if unknown:
        raise JobsError(f"unknown job option(s) {unknown}")
    model = options.get("model", "sg")
    tokenizer = options.get("tokenizer", "word")
    if model not in ("sg", "cbow"):
        raise JobsError(f"model must be sg or cbow, not {model!r}")
    if tokenizer not in TOKENIZERS:
        raise JobsError(f"tokenizer must be word or sentencepiece, not {tokenizer!r}")
    column = options.get("column")
    if column is not None and (not isinstance(column, str) or not column.strip()):
        raise JobsError(f"column must be a column name, not {column!r}")
    evaluation_sets(options)
    given = {OPTION_FIELDS[k]: v for k, v in options.items() if k in OPTION_FIELDS}
    for name, value in given.items():
        low = 0 if name in ("negative", "sample") else 1
        if not isinstance(value, int | float) or value < low:
            raise JobsError(f"{name} must be a number >= {low}, not {value!r}")
    return replace(Word2VecParams(), sg=model == "sg", **given), tokenizer


def evaluation_sets(options: dict) -> list[str]:
    """The standard evaluation sets a job asked for (none by default); unknown names raise."""
    names = options.get("evaluation", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise JobsError(f"evaluation must be a list of set names, not {names!r}")
    unknown = sorted(set(names) - set(STANDARD_SETS))
    if unknown:
        raise JobsError(f"unknown evaluation set(s) {unknown}: use {', '.join(STANDARD_SETS)}")
    return list(dict.fromkeys(names))


def is_url(corpus: str) -> bool:
    return corpus.split(":", 1)[0].lower() in ("http", "https")
