"""Request counts and latency per endpoint for the two HTTP services (the upvote service and the
jobs API), each under metric names of its own: the middleware only needs an object with a
``requests`` counter labelled (endpoint, method, status) and a ``latency`` histogram labelled
(endpoint).

A plain ASGI middleware (not ``BaseHTTPMiddleware``) keeps the per-request cost to a few
microseconds. Labels come from a closed set, so no client can grow the series without bound: the
endpoint is the route's template, or the path when it is one of the app's paths (a 413 is
answered before routing), else "unmatched"; a method outside ``METHODS`` is "other"; the status
is the server's.
"""

import time
from typing import Protocol

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics(Protocol):
    requests: Counter
    latency: Histogram


class MetricsMiddleware:
    def __init__(
        self, app: ASGIApp, metrics: RequestMetrics, paths: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = paths  # the app's own paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            # The route template ("/similar"), not the raw path, so labels stay few.
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or (
                scope["path"] if scope["path"] in self.paths else "unmatched"
            )
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.requests.labels(endpoint, method, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
