"""A job's corpus, from what the user gave to encoded ids: a URL is fetched within the owner's
byte quota and an upload extracted (both into one checked UTF-8 text file), then encoded once;
a later attempt of the job reuses whatever an earlier one finished."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from upvote.embeddings.corpus import EncodedCorpus, encode_corpus, iter_documents
from upvote.embeddings.params import Word2VecParams
from upvote.jobs import store, tokens
from upvote.jobs.artifacts import ArtifactStore
from upvote.jobs.extract import extract
from upvote.jobs.fetch import FetchError, FetchLimits, TooLarge, fetch
from upvote.jobs.options import UPLOAD_PREFIX, JobsError, is_url
from upvote.jobs.store import State
from upvote.settings import get_settings


def _tokenize(tokenizer: str, documents, out: Path):
    """The tokenize callable; a SentencePiece model is trained once per job and kept in out."""
    from upvote.tokenizer.sentencepiece import SentencePieceTokenizer
    from upvote.tokenizer.word import WordTokenizer

    if tokenizer == "word":
        return WordTokenizer().tokenize
    model_dir = out / "tokenizer"
    if model_dir.is_dir():
        return SentencePieceTokenizer.load(model_dir).tokenize
    model = SentencePieceTokenizer.train(documents)
    model.save(model_dir)
    return model.tokenize


def owner_limits(conn, job: store.Job, limits: FetchLimits) -> FetchLimits:
    """The fetch limits of a URL job whose owner is an API token: the download is capped at what
    is left of the token's byte quota (an operator's job, owned by no token, has no quota)."""
    token = tokens.get_token(conn, job.owner) if is_url(job.corpus) else None
    if token is None:
        return limits
    settings = get_settings()
    quota = tokens.quota(token, settings.jobs_max_concurrent_jobs, settings.jobs_max_bytes)
    remaining = quota.max_bytes - store.usage(conn, job.owner, besides=job.id)[1]
    if remaining <= 0:
        raise JobsError(
            f"the byte quota of token {job.owner!r} ({quota.max_bytes} bytes) is used up"
        )
    return replace(limits, max_download_bytes=min(limits.max_download_bytes, remaining))


def _fetch_within_quota(job: store.Job, dest: Path, limits: FetchLimits) -> Path:
    """fetch, with a download over the owner's remaining quota named as such."""
    try:
        return fetch(job.corpus, dest, limits)
    except TooLarge:
        if limits.max_download_bytes < FetchLimits.max_download_bytes:
            raise FetchError(
                f"download larger than the {limits.max_download_bytes} bytes left of the byte "
                f"quota of token {job.owner!r}"
            ) from None
        raise


def corpus_text(conn, job: store.Job, artifacts: ArtifactStore, limits: FetchLimits) -> str:
    """The job's corpus as something `iter_documents` reads. A stranger's corpus (a URL, an
    upload) is fetched SSRF-safely and made into one checked UTF-8 text file, out/text/corpus.txt
    (out: the job's scratch folder), which a later attempt reuses; the download is deleted once
    extracted. An upload is copied from the artifact store first (a no-op for a local folder);
    the store's copy stays until the job ends, for an attempt on another machine. An operator's
    local path (`upvote jobs submit PATH`) is read as `upvote embed train` reads it."""
    out = artifacts.scratch(job.id)
    text = out / "text" / "corpus.txt"
    if text.exists():
        return str(text)
    column = job.options.get("column")
    if is_url(job.corpus):
        store.set_state(conn, job.id, State.fetching)
        downloaded = _fetch_within_quota(job, out / "download", owner_limits(conn, job, limits))
        store.set_corpus_bytes(conn, job.id, downloaded.stat().st_size)
        try:
            extract(downloaded, text.parent, column=column, limits=limits)
        finally:
            downloaded.unlink(missing_ok=True)
    elif job.corpus.startswith(UPLOAD_PREFIX):
        name = job.corpus.removeprefix(UPLOAD_PREFIX)
        artifacts.pull(job.id, f"upload/{name}")
        uploaded = out / "upload" / name
        extract(uploaded, text.parent, column=column, limits=limits)
        uploaded.unlink(missing_ok=True)
    else:
        return job.corpus
    store.set_state(conn, job.id, State.encoding)
    return str(text)


def encoded_corpus(
    conn,
    job: store.Job,
    params: Word2VecParams,
    tokenizer: str,
    artifacts: ArtifactStore,
    limits: FetchLimits,
) -> EncodedCorpus:
    """The encoded corpus in <scratch>/corpus: reused when an earlier attempt on this machine
    finished encoding (then nothing is fetched again); the extracted text is deleted once
    encoded."""
    out = artifacts.scratch(job.id)
    encoded_dir = out / "corpus"
    if (encoded_dir / "meta.json").exists():
        return EncodedCorpus.open(encoded_dir)
    corpus = corpus_text(conn, job, artifacts, limits)
    encoded = _encode(corpus, job.options.get("column"), params, tokenizer, encoded_dir)
    shutil.rmtree(out / "text", ignore_errors=True)
    return encoded


def _encode(
    corpus: str, column: str | None, params: Word2VecParams, tokenizer: str, encoded_dir: Path
) -> EncodedCorpus:
    documents = iter_documents(corpus, column)
    tokenize = _tokenize(tokenizer, documents, encoded_dir.parent)
    return encode_corpus(
        documents, encoded_dir, min_count=params.min_count, max_vocab=params.max_vocab,
        tokenize=tokenize,
    )  # fmt: skip
