"""Live accuracy as Prometheus gauges: what `upvote monitor` last measured, per model version.

The service cannot know a story's final score; `upvote monitor` (run on a schedule) can, and
leaves its per-version figures in ``live_accuracy.json`` beside the prediction logs. This
collector reads that file when ``/metrics`` is scraped (again only when it changed), so the
dashboard shows the served model's realized error next to its traffic.
"""

import json
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

SUMMARY_FILE = "live_accuracy.json"  # written by monitor/live.py
GAUGES = {  # key in the file -> (gauge name, help)
    "log_rmse": ("upvote_live_log_rmse", "RMSE of log1p(score) on settled stories."),
    "log_mae": ("upvote_live_log_mae", "MAE of log1p(score) on settled stories."),
    "spearman": ("upvote_live_spearman", "Spearman of predicted vs final score."),
    "coverage_p10_p90": (
        "upvote_live_coverage_p10_p90",
        "Share of settled stories whose score fell inside the predicted p10-p90.",
    ),
    "stories": ("upvote_live_stories", "Settled stories the model never saw, scored."),
}


class LiveAccuracy(Collector):
    def __init__(self, log_dir: Path) -> None:
        self.path = log_dir / SUMMARY_FILE
        self._stamp: tuple[int, int] | None = None
        self._versions: dict[str, dict] = {}

    def _read(self) -> dict[str, dict]:
        try:
            stat = self.path.stat()
        except OSError:
            return {}
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                self._versions = json.loads(self.path.read_text()).get("versions", {})
            except (OSError, ValueError, AttributeError):  # torn or foreign: skip this scrape
                return self._versions
            self._stamp = stamp
        return self._versions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        versions = self._read()
        for key, (name, description) in GAUGES.items():
            gauge = GaugeMetricFamily(name, description, labels=["version"])
            for version, figures in versions.items():
                value = figures.get(key)
                if isinstance(value, int | float):
                    gauge.add_metric([str(version)], float(value))
            yield gauge
