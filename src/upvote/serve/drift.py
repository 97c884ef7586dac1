"""Drift of what the service is asked about, against the reference profile in the model's bundle.

Per scored story the routes call ``DriftMonitor.record``: one identity check and one
``deque.append`` of the story (the dict the model read) and its predicted score, no numpy and no
lock, so the bookkeeping stays a fraction of a microsecond of a request that costs a few hundred.
The deque holds the last ``drift_window`` stories. Everything else (tokenizing the window's
titles, binning, PSI and KS: ``model/profile.py``) happens when drift is read: by a Prometheus
scrape of ``/metrics`` (``DriftCollector``), by ``GET /monitoring``, and every
``drift_check_seconds`` by the app (so a threshold crossing is logged without anyone looking);
at most once per ``CACHE_SECONDS``, ~30 ms for 2,000 stories.

A feature alerts when its PSI or (continuous features) its KS statistic passes its threshold
over at least ``drift_min_stories`` stories; the alert's start and end are logged once each, not
per request. A model swap (``ModelHolder``'s ``on_swap``) starts a new, empty window against the
new model's profile; a bundle without a profile (made before profiles) serves as before and
reports "no reference profile".
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from upvote.model.bundle import UpvoteModel
from upvote.model.profile import CONTINUOUS, log1p_score, story_values
from upvote.serve.config import ServeSettings

log = logging.getLogger(__name__)
CACHE_SECONDS = 1.0  # a report is reused this long (a scrape and a /monitoring call at once)

OK, DRIFT, FEW = "ok", "drift", "not enough data"
NO_PROFILE, NO_MODEL = "no reference profile", "no model"


@dataclass
class FeatureState:
    feature: str
    kind: str  # "continuous" or "categorical"
    stories: int  # stories of the window with a value (a domain needs a known url, an hour a time)
    psi: float | None  # None below ``min_stories``
    ks: float | None  # None below ``min_stories`` and for categorical features
    psi_threshold: float
    ks_threshold: float | None
    alert: bool
    status: str  # "ok", "drift" or "not enough data"


@dataclass
class DriftReport:
    version: str | None  # the model (and so the reference profile) of the window
    reference: str | None  # which stories the profile describes
    status: str  # "drift" if any feature alerts, "ok", "not enough data", "no reference profile"
    window: int  # stories in the window now
    window_size: int  # at most this many (``drift_window``)
    min_stories: int
    features: list[FeatureState]


def measure(
    model: UpvoteModel | None, items: list[tuple[Mapping[str, Any], float]], settings: ServeSettings
) -> DriftReport:
    """Drift of ``items`` ((story, predicted score) pairs, a window) against ``model``'s profile,
    with the thresholds of ``settings``: what the service reports and ``upvote monitor`` prints."""
    profile = model.profile if model is not None else None
    head = {
        "version": model.version if model is not None else None,
        "reference": profile.source if profile is not None else None,
        "window": len(items),
        "window_size": settings.drift_window,
        "min_stories": settings.drift_min_stories,
    }
    if profile is None:
        status = NO_MODEL if model is None else NO_PROFILE
        return DriftReport(status=status, features=[], **head)
    stories = [story for story, _ in items]
    values = story_values(model.featurizer, stories, [log1p_score(s) for _, s in items])
    psi_threshold, ks_threshold = settings.drift_psi_threshold, settings.drift_ks_threshold
    features = []
    for drift in profile.compare(values):
        continuous = drift.kind == CONTINUOUS
        enough = drift.stories >= settings.drift_min_stories
        psi = drift.psi if enough else None
        ks = drift.ks if enough and continuous else None
        alert = (psi is not None and psi > psi_threshold) or (ks is not None and ks > ks_threshold)
        features.append(
            FeatureState(
                feature=drift.feature,
                kind=drift.kind,
                stories=drift.stories,
                psi=psi,
                ks=ks,
                psi_threshold=psi_threshold,
                ks_threshold=ks_threshold if continuous else None,
                alert=alert,
                status=DRIFT if alert else OK if enough else FEW,
            )
        )
    if any(f.alert for f in features):
        status = DRIFT
    else:
        status = OK if any(f.status == OK for f in features) else FEW
    return DriftReport(status=status, features=features, **head)


class DriftMonitor:
    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings  # the window's size, the thresholds
        self.window_size = settings.drift_window
        # (model, its window) in one attribute: a swap replaces both at once for ``record``
        self._current: tuple[UpvoteModel | None, deque] = (None, deque(maxlen=self.window_size))
        self._lock = threading.Lock()  # one report computed at a time; ``record`` never takes it
        self._cached: tuple[float, UpvoteModel | None, DriftReport] | None = None
        self._alerting: set[str] = set()  # features whose alert was logged and has not ended

    def reset(self, model: UpvoteModel) -> None:
        """Serve ``model``: a new, empty window against its profile."""
        self._current = (model, deque(maxlen=self.window_size))
        self._alerting = set()  # the old model's alerts are not this one's

    def record(self, model: UpvoteModel, story: Mapping[str, Any], score: float) -> None:
        """Remember a story ``model`` scored ``score``. A request still finishing on the model
        before a swap is not counted against the new one's profile."""
        current = self._current
        if model is current[0]:
            current[1].append((story, score))

    def report(self) -> DriftReport:
        """Drift of the window now (cached ``CACHE_SECONDS``); logs alerts that start or end."""
        with self._lock:
            model, window = self._current
            cached = self._cached
            if cached and cached[1] is model and time.monotonic() - cached[0] < CACHE_SECONDS:
                return cached[2]
            items = list(window)  # a C-level copy: appends from other threads never tear it
            report = measure(model, items, self.settings)
            self._log_alerts(report)
            self._cached = (time.monotonic(), model, report)
            return report

    def _log_alerts(self, report: DriftReport) -> None:
        alerting = {f.feature: f for f in report.features if f.alert}
        for name in sorted(alerting.keys() - self._alerting):
            f = alerting[name]
            ks = f" KS {f.ks:.3f} (threshold {f.ks_threshold})" if f.ks is not None else ""
            log.warning(
                "drift: %s of model %s has PSI %.3f (threshold %s)%s over the last %d stories",
                name, report.version, f.psi, f.psi_threshold, ks, f.stories,
            )  # fmt: skip
        for name in sorted(self._alerting - alerting.keys()):
            log.info("drift: %s of model %s is back under its thresholds", name, report.version)
        self._alerting = set(alerting)


class DriftCollector(Collector):
    """The drift gauges, computed when Prometheus scrapes ``/metrics``."""

    def __init__(self, monitor: DriftMonitor) -> None:
        self.monitor = monitor

    def describe(self) -> Iterable[Metric]:
        return []  # no computation when the collector is registered

    def collect(self) -> Iterable[Metric]:
        report = self.monitor.report()
        stories = GaugeMetricFamily(
            "upvote_drift_window_stories", "Stories in the drift window of the model serving."
        )
        stories.add_metric([], report.window)
        gauges = {
            "psi": GaugeMetricFamily(
                "upvote_drift_psi",
                "Population stability index of a feature: window vs reference profile.",
                labels=["feature"],
            ),
            "ks": GaugeMetricFamily(
                "upvote_drift_ks",
                "Two-sample KS statistic of a continuous feature: window vs reference.",
                labels=["feature"],
            ),
        }
        alert = GaugeMetricFamily(
            "upvote_drift_alert", "1 while a feature's PSI or KS is over its threshold.",
            labels=["feature"],
        )  # fmt: skip
        for f in report.features:
            for name, gauge in gauges.items():
                value = getattr(f, name)
                if value is not None:
                    gauge.add_metric([f.feature], value)
            alert.add_metric([f.feature], float(f.alert))
        return [stories, *gauges.values(), alert]
