"""The compose monitoring profile's files against a real Prometheus: it scrapes a real
`upvote serve`, loads the alert rules, and every query of the Grafana dashboard runs on it and
names only metrics the service exports. (Grafana itself has no Debian package and Docker Hub is
out of reach here: its provisioning files are checked for consistency only.)"""

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from upvote.serve.deploy import free_port

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "docker" / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "upvote.json"
PROMETHEUS = shutil.which("prometheus")

needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="needs the prometheus binary (apt-get install prometheus)"
)


def dashboard_queries() -> list[str]:
    return [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]


def local_config(tmp_path: Path, target: str) -> Path:
    """The repository's prometheus.yml and alerts.yml, scraping ``target`` every second."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    shutil.copy(MONITORING / "alerts.yml", tmp_path / "alerts.yml")
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(tmp_path / "alerts.yml")]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_grafana_provisioning_points_at_the_provisioned_prometheus():
    datasources = yaml.safe_load(
        (MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    uids = {d["uid"] for d in datasources}
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "upvote" and len(dashboard["panels"]) >= 8
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] in uids, panel["title"]
        assert panel["targets"], panel["title"]
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for what in ("requests", "latency", "predicted", "drift", "live accuracy"):
        assert what in titles


@needs_prometheus
def test_prometheus_scrapes_the_service_and_runs_every_dashboard_query(live_server, tmp_path):
    for _ in range(5):  # some traffic, so the request and prediction series exist
        story = {"title": "Show HN: a tiny word2vec", "author": "pg", "timestamp": 1474000000}
        assert httpx.post(f"{live_server}/how_many_upvotes", json=story).status_code == 200
    exported = httpx.get(f"{live_server}/metrics").text
    host = live_server.removeprefix("http://")
    config = local_config(tmp_path, host)
    check = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr

    port = free_port()
    prometheus = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    api = f"http://127.0.0.1:{port}/api/v1"
    try:

        def query(expr: str) -> dict:
            answer = httpx.get(f"{api}/query", params={"query": expr}, timeout=10).json()
            assert answer["status"] == "success", (expr, answer)
            return answer["data"]

        deadline = time.monotonic() + 60
        while True:
            try:
                results = query('up{job="upvote"}')["result"]
                if results and results[0]["value"][1] == "1":
                    break
            except (httpx.TransportError, ValueError):  # not up yet, or still starting
                pass
            assert time.monotonic() < deadline, "Prometheus did not scrape the service in 60 s"
            time.sleep(0.5)
        requests = query('sum(upvote_http_requests_total{endpoint="/how_many_upvotes"})')
        assert float(requests["result"][0]["value"][1]) >= 5
        for expr in dashboard_queries():  # valid PromQL, on metrics the service exports
            query(expr)
            for name in re.findall(r"\bupvote_[a-z0-9_]+", expr):
                base = re.sub(r"_(bucket|total|count|sum)$", "", name)
                typed = f"# TYPE {name} " in exported or f"# TYPE {base} " in exported
                assert typed, f"{name} (in {expr!r}) is not exported"
        rules = httpx.get(f"{api}/rules").json()["data"]["groups"][0]["rules"]
        assert len(rules) == 5 and all(r["health"] in ("ok", "unknown") for r in rules)
    finally:
        prometheus.terminate()
        prometheus.wait(10)
