"""How ``upvote serve`` runs uvicorn: its options, and a deadline for reading a request.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive`` seconds, but once a
byte has arrived it waits for the rest of the request for ever: a client sending its headers a
byte every few seconds (slowloris) holds a connection, and a few thousand of them hold the
server. ``DeadlineH11Protocol`` closes a connection whose request (headers and body) has not
fully arrived ``request_timeout`` seconds after the connection opened or its previous answer
went out. A request being answered is never cut: the check is on what the client still owes.
"""

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from upvote.serve.config import ServeSettings


class DeadlineH11Protocol(H11Protocol):
    request_timeout = 10.0  # seconds; uvicorn_options() makes a subclass with the setting's
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.request_timeout, self._expire)

    def _expire(self) -> None:
        """Close if the client still owes (part of) a request: no complete request head since
        the timer was armed (IDLE) or an unfinished body (SEND_BODY)."""
        self._deadline = None
        if not self.transport.is_closing() and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self.transport.close()


def uvicorn_options(settings: ServeSettings) -> dict[str, Any]:
    """uvicorn.run's keyword arguments for the service (docs/security.md, "Limits")."""
    protocol = type(
        "DeadlineH11Protocol",
        (DeadlineH11Protocol,),
        {"request_timeout": settings.request_timeout_seconds},
    )
    return {
        "http": protocol,
        "timeout_keep_alive": 5,  # an idle keep-alive connection is closed after 5 s
        "limit_concurrency": settings.limit_concurrency,  # beyond: 503, not a pile-up
        "h11_max_incomplete_event_size": 16 * 1024,  # request line + headers: at most 16 KB
        "timeout_graceful_shutdown": 10,
        "access_log": False,
        "server_header": False,
    }
