"""JSON request bodies, read the same way on every route.

Every POST route reads its body here rather than through FastAPI's declared-body machinery:

- one parser, pydantic's (Rust, straight from the bytes): malformed JSON, a non-UTF-8 body or a
  lone surrogate escape (``"\\ud800"``) is a 422 ``json_invalid`` on every route (FastAPI's
  ``json.loads`` path gave a 400 on some and a 500 on others);
- ``NaN``, ``Infinity`` or ``1e400`` can only land in a field that refuses them (no field takes a
  float), so they are a 422 naming that field;
- the body is read only when the route asks for it, after the dependencies declared before it:
  ``/admin/reload`` checks the token first, so an anonymous caller never gets its body parsed;
- a body that is not ``application/json`` (or ``application/*+json``) is a 415.

``request_body_schema`` puts the body back into the OpenAPI spec, as a declared body would.
"""

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def request_body_schema(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    """OpenAPI for a body a route validates itself, so /docs shows it as for a declared body."""
    schema = {"application/json": {"schema": model.model_json_schema()}}
    return {"requestBody": {"required": required, "content": schema}}


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_json(request: Request, model: type[M], optional: bool = False) -> M | None:
    """The request's body validated as ``model`` (``None`` for an empty optional body)."""
    raw = await request.body()
    if optional and not raw:
        return None
    if not is_json(request.headers.get("content-type")):
        raise HTTPException(415, "the body must be JSON: send Content-Type: application/json")
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors(include_url=False)]
        ) from None


def json_body(model: type[M], optional: bool = False) -> Callable[[Request], Awaitable[M | None]]:
    """A FastAPI dependency giving the body as ``model``; it runs after the ones declared before
    it, on the event loop (pydantic's parse of a body within UPVOTE_MAX_BODY_BYTES is quick)."""

    async def dependency(request: Request) -> M | None:
        return await read_json(request, model, optional)

    return dependency
