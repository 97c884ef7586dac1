"""A corpus upload: the multipart body streamed to a file as it arrives, never held in memory.

Starlette's form parser would spool the whole body to a temporary file before the route sees
it, so a size limit could only be checked once everything had arrived; here python-multipart's
push parser is fed the request stream chunk by chunk and the upload stops the moment it passes
its limit (a 413 naming the field ``file``). Parts: ``file`` (the corpus, required) and
``options`` (JSON of JobOptions, optional); any other part is a 422 naming it. The file goes
straight into the artifact store (jobs/artifacts.py), under uploads-tmp/ until its job exists.
The parser's callbacks write to it directly: with a local folder on the event loop (one chunk of
a local file at a time), with a store URL on the thread pool (a write may upload a part).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from upvote.jobs.artifacts import ArtifactStore

MAX_FIELD_BYTES = 65_536  # the options part
FIELDS = ("file", "options")


class UploadError(Exception):
    """A bad upload: status (413, 422, 400), the field it concerns and a one-line message."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


@dataclass
class Upload:
    key: str  # where the body went in the store (a temporary name; the caller moves it)
    name: str  # a safe file name: the client's, without folders or odd characters
    size: int
    options: str | None  # the options part, undecoded


def safe_name(filename: str | None) -> str:
    """The last path part of the client's file name, letters, digits and ._- only, no leading
    dot, at most 100 characters; 'corpus' when nothing is left. The extension stays: it helps
    extraction tell .gz from .zip."""
    base = re.split(r"[/\\]", filename or "")[-1]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[:100]
    return name or "corpus"


def _disposition(value: bytes) -> tuple[str, str | None]:
    _, params = parse_options_header(value)
    name = params.get(b"name", b"").decode("utf-8", "replace")
    filename = params.get(b"filename")
    return name, filename.decode("utf-8", "replace") if filename is not None else None


async def receive(
    request: Request, artifacts: ArtifactStore, max_bytes: int, limit_why: str
) -> Upload:
    """Stream the request's multipart body; the file part goes to the store's
    uploads-tmp/<random> and is capped at max_bytes (limit_why names the limit in the 413).
    Nothing is left behind on error."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadError(422, "file", "expected multipart/form-data with a boundary")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes + MAX_FIELD_BYTES:
        raise UploadError(413, "file", f"upload larger than {limit_why} ({max_bytes} bytes)")
    key = f"uploads-tmp/{uuid.uuid4().hex}"
    local = artifacts.local_path(key) is not None
    state = {"headers": {}, "field": b"", "value": b"", "part": None, "size": 0}
    seen: dict[str, object] = {"file": None, "options": None}
    options = bytearray()
    out = None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        nonlocal out
        name, filename = _disposition(state["headers"].get(b"content-disposition", b""))
        state["headers"] = {}
        if name not in FIELDS:
            raise UploadError(422, name or "body", f"unknown form field {name!r} (file, options)")
        if seen[name] is not None:
            raise UploadError(422, name, f"form field {name!r} given twice")
        seen[name] = safe_name(filename) if name == "file" else ""
        state["part"] = name
        if name == "file":
            out = artifacts.open_write(key)  # closed at the part's end or on error

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["part"] == "file":
            state["size"] += end - start
            if state["size"] > max_bytes:
                raise UploadError(
                    413, "file", f"upload larger than {limit_why} ({max_bytes} bytes)"
                )
            out.write(data[start:end])
        else:
            options.extend(data[start:end])
            if len(options) > MAX_FIELD_BYTES:
                raise UploadError(413, "options", f"options larger than {MAX_FIELD_BYTES} bytes")

    def on_part_end() -> None:
        nonlocal out
        if state["part"] == "file" and out is not None:
            out.close()
            out = None
        state["part"] = None

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field, "on_header_value": on_header_value,
            "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data, "on_part_end": on_part_end,
        },
    )  # fmt: skip
    try:
        async for chunk in request.stream():
            if local:
                parser.write(chunk)
            else:
                await run_in_threadpool(parser.write, chunk)
        parser.finalize()
        if seen["file"] is None:
            raise UploadError(422, "file", "field required: the corpus file")
    except UploadError:
        _discard(out, artifacts, key)
        raise
    except Exception as error:  # a malformed body, a client gone, a full disk
        _discard(out, artifacts, key)
        raise UploadError(
            400, "file", f"could not read the upload ({type(error).__name__})"
        ) from None
    if out is not None:  # the body ended inside the file part
        _discard(out, artifacts, key)
        raise UploadError(400, "file", "the upload ended before its last part")
    text = bytes(options).decode("utf-8", "replace") if seen["options"] is not None else None
    return Upload(key, str(seen["file"]), state["size"], text)


def _discard(out, artifacts: ArtifactStore, key: str) -> None:
    if out is not None:
        out.close()
    artifacts.remove(key)
