"""Prometheus metrics of the upvote service: request counts and latency per endpoint (counted by
http_metrics.MetricsMiddleware), and the predicted scores. Each app gets its own registry so
several apps (tests) never share counters."""

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "upvote_http_requests",
            "HTTP requests by endpoint, method and status.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "upvote_http_request_seconds",
            "HTTP request latency by endpoint.",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.predictions = Histogram(
            "upvote_predicted_score",
            "Predicted upvotes of every scored story.",
            buckets=(1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=self.registry,
        )
