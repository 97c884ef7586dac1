"""ASGI guards around the app: a request-body size limit, and a net under unexpected errors.

Both are plain ASGI middleware (no ``BaseHTTPMiddleware``), cheap on the hot path:

- ``BodyLimitMiddleware`` answers 413 before the app sees an oversized body. A request that
  declares its size (``Content-Length``, nearly all of them) is judged on the header alone and
  otherwise passed through untouched: the server (h11) never hands the app more bytes than the
  header declares. Only a chunked body (no length) is read here, counted as it arrives, and
  replayed to the app once complete, so at most ``max_bytes`` are ever held.
- ``ContainErrors`` sits outside everything (Starlette's ``ServerErrorMiddleware`` included, which
  sends the 500 and then re-raises): once a complete answer has gone out, the error has been
  handled and logged (app.py), so it stops here. Re-raised, uvicorn would log its traceback again,
  message and all, and close the client's keep-alive connection.
"""

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large_answer(max_bytes: int) -> tuple[Message, Message]:
    body = json.dumps(
        {"detail": f"request body larger than {max_bytes} bytes (UPVOTE_MAX_BODY_BYTES)"}
    ).encode()
    start = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),  # the rest of the body is not worth reading
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length: bytes | None = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        if length is not None and not chunked:
            # uvicorn (h11) refuses a malformed Content-Length itself; other servers may not
            if not length.isdigit() or int(length) > self.max_bytes:
                await self.refuse(send)
            else:
                await self.app(scope, receive, send)
            return
        if not chunked:  # no body at all
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self.refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, replay([whole], receive), send)

    async def refuse(self, send: Send) -> None:
        for message in too_large_answer(self.max_bytes):
            await send(message)


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` first, then whatever ``receive`` gives."""

    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed


class ContainErrors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answered = False

        async def watch(message: Message) -> None:
            nonlocal answered
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True

        try:
            await self.app(scope, receive, watch)
        except Exception:
            if not answered:  # a half-sent answer: the connection must be closed (uvicorn)
                raise
