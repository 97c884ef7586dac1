"""Prometheus metrics of the job queue, read from the database at scrape time.

Any number of API processes and workers share one database, so counters kept in one process
would see a fraction of the jobs; a collector that asks the table on each scrape sees them all,
and costs three small aggregate queries. Deleted jobs stay counted in the failure counter and
the durations (store.mark_deleted keeps their rows), so neither goes backwards.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    SummaryMetricFamily,
)
from psycopg_pool import ConnectionPool

from upvote.jobs.store import RUNNING, State

log = logging.getLogger(__name__)

BY_STATE = (
    "SELECT state::text AS state, count(*) AS n FROM upvote_jobs WHERE deleted IS NULL "
    "GROUP BY state"
)
DURATIONS = (
    "SELECT state::text AS state, count(*) AS n, "
    "coalesce(sum(extract(epoch FROM finished - started)), 0)::float8 AS seconds "
    "FROM upvote_jobs WHERE finished IS NOT NULL AND started IS NOT NULL GROUP BY state"
)
FAILED = "SELECT count(*) AS n FROM upvote_jobs WHERE state = 'failed'"


class HttpMetrics:
    """Requests and latency per endpoint, counted by http_metrics.MetricsMiddleware (which
    reads only these two attributes) under names of their own."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "upvote_jobs_http_requests",
            "HTTP requests of the jobs API by endpoint, method and status.",
            ["endpoint", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "upvote_jobs_http_request_seconds",
            "HTTP request latency of the jobs API by endpoint.",
            ["endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
            registry=registry,
        )


class JobsCollector:
    def __init__(self, pool: ConnectionPool, timeout_s: float) -> None:
        self.pool, self.timeout_s = pool, timeout_s

    def describe(self):
        return []  # no query at registration

    def collect(self):
        up = GaugeMetricFamily("upvote_jobs_database_up", "1 when the job database answered.")
        try:
            with self.pool.connection(timeout=self.timeout_s) as conn:
                states = {row["state"]: row["n"] for row in conn.execute(BY_STATE)}
                durations = conn.execute(DURATIONS).fetchall()
                failed = conn.execute(FAILED).fetchone()["n"]
        except Exception as error:  # no database: say so, and keep the scrape working
            log.warning("job metrics: database unavailable (%s)", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily(
            "upvote_jobs", "Jobs by state (queued: the queue's depth).", labels=["state"]
        )
        for state in State:
            jobs.add_metric([state.value], states.get(state.value, 0))
        yield jobs
        running = GaugeMetricFamily("upvote_jobs_running", "Jobs fetching, encoding or training.")
        running.add_metric([], sum(states.get(state.value, 0) for state in RUNNING))
        yield running
        summary = SummaryMetricFamily(
            "upvote_job_duration_seconds",
            "Run time (started to finished) of finished jobs, by final state.",
            labels=["state"],
        )
        for row in durations:
            summary.add_metric([row["state"]], count_value=row["n"], sum_value=row["seconds"])
        yield summary
        total = CounterMetricFamily("upvote_jobs_failed", "Jobs that ended failed.")
        total.add_metric([], failed)
        yield total
