"""Drift monitoring on the real (small) trained model: the bundle's profile, the service's gauges
and /monitoring fed held-out HN stories and encyclopedia sentences, swaps, and `upvote monitor`."""

import logging
import os
import re
import shutil
import subprocess
import sys

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from upvote.data.dataset import load_stories
from upvote.model.bundle import UpvoteModel
from upvote.model.features import Featurizer
from upvote.model.history import HistoryConfig, HistoryStore
from upvote.model.profile import build_profile
from upvote.model.registry import load_model, publish
from upvote.model.splits import prepare_data
from upvote.serve import drift
from upvote.serve.app import create_app
from upvote.serve.config import ServeSettings
from upvote.serve.drift import NO_PROFILE

QUICK_ROWS = 4000  # `upvote train --quick` (conftest's model): its split of the sample

# Long encyclopedia-style sentences: nothing like an HN title in length, words or source.
WIKIPEDIA = [
    "The Battle of Hastings was fought on 14 October 1066 between the Norman-French army of "
    "William, the Duke of Normandy, and an English army under the Anglo-Saxon King Harold",
    "Photosynthesis is a biological process used by many cellular organisms to convert light "
    "energy into chemical energy, which is stored in organic compounds that can later be used",
    "The Danube is the second-longest river in Europe, after the Volga in Russia; it flows "
    "through much of Central and Southeastern Europe, from the Black Forest into the Black Sea",
    "Johann Sebastian Bach was a German composer and musician of the late Baroque period, known "
    "for his orchestral music such as the Brandenburg Concertos, and for his vocal music",
    "Mount Kilimanjaro is a dormant volcano in Tanzania with three volcanic cones, Kibo, Mawenzi "
    "and Shira; it is the highest mountain in Africa, about 4,900 metres from its base",
    "The Treaty of Westphalia comprises two treaties signed in October 1648 in the Westphalian "
    "cities of Osnabrueck and Muenster, which ended the Thirty Years' War and the Eighty Years'",
]


def drift_settings(trained_dir, tmp_path, **overrides) -> ServeSettings:
    options = {
        "drift_window": 400,
        "drift_min_stories": 100,
        "drift_check_seconds": 0,
        "admin_token": "drift-admin",
    }
    return ServeSettings(data_dir=trained_dir, log_dir=tmp_path / "logs", **(options | overrides))


@pytest.fixture
def held_out_registry(trained_dir, tmp_path):
    """A data dir whose champion is the trained model with its track records (history.py) frozen
    where the held-out stories begin, as a model's are when new stories come: the bundle's own
    store reaches to the end of the test period, so it knows each held-out story's score (in
    its domain's and author's record), which shifts their predictions (prediction PSI ~0.15
    against ~0.08 without; measured on the sample)."""
    model = load_model(registry_dir=trained_dir / "models")
    data = prepare_data(load_stories(), max_rows=QUICK_ROWS)
    before = data.history[data.history["time"] < data.test["time"].min()]
    config = HistoryConfig(**model.metadata["options"]["history"])
    featurizer = model.featurizer
    model.featurizer = Featurizer(
        featurizer.tokenizer,
        model.vectors.key_to_index,
        featurizer.config,
        HistoryStore.fit(before, config),
        featurizer.text_score,
    )
    publish(model, "held-out", tmp_path / "data" / "models")
    return tmp_path / "data"


def held_out_stories() -> list[dict]:
    """The quick model's test split: stories it never saw, from after its validation split."""
    test = prepare_data(load_stories(), max_rows=QUICK_ROWS).test
    return [
        {
            "title": row.title,
            "url": None if pd.isna(row.url) else row.url,
            "by": None if pd.isna(row.by) else row.by,
            "time": row.time.isoformat(),
        }
        for row in test.itertuples()
    ]


def wikipedia_stories(n: int) -> list[dict]:
    return [
        {"title": WIKIPEDIA[i % len(WIKIPEDIA)], "url": f"https://en.wikipedia.org/wiki/Page_{i}"}
        for i in range(n)
    ]


def post_all(client: TestClient, stories: list[dict]) -> None:
    for start in range(0, len(stories), 100):
        response = client.post("/predict", json={"stories": stories[start : start + 100]})
        assert response.status_code == 200, response.text


def gauge(metrics: str, name: str, feature: str | None = None) -> float | None:
    label = f'{{feature="{feature}"}}' if feature else ""
    match = re.search(rf"^{name}{re.escape(label)} (\S+)$", metrics, re.MULTILINE)
    return float(match[1]) if match else None


def test_training_profiles_the_validation_split_and_the_bundle_keeps_it(trained_dir, tmp_path):
    model = load_model(registry_dir=trained_dir / "models")
    profile = model.profile
    assert profile is not None and profile.source.startswith("validation split: ")
    valid = prepare_data(load_stories(), max_rows=QUICK_ROWS).valid
    assert f"{len(valid)} stories" in profile.source
    # the quick model's validation split covers ten hours: no hour-of-day profile
    assert set(profile.features) == {
        "prediction", "title_chars", "pieces", "oov_share", "domain", "form"
    }  # fmt: skip
    assert profile.source.endswith("(under a day: no hour-of-day profile)")
    days = prepare_data(load_stories(), max_rows=QUICK_ROWS).train  # five days
    hours = build_profile(model.featurizer, days, [1.0] * len(days)).features["hour"]
    assert len(hours.categories) == 24 and sum(hours.props) == pytest.approx(1.0)
    for feature in profile.features.values():
        assert sum(feature.props) == pytest.approx(1.0)
    assert profile.features["title_chars"].count == len(valid)
    saved = model.save(tmp_path / "copy")
    again = UpvoteModel.load(saved)
    assert again.profile.to_json() == profile.to_json()
    (saved / "profile.json").unlink()
    assert UpvoteModel.load(saved).profile is None  # a bundle made before profiles still loads


def test_held_out_hn_stories_stay_under_the_thresholds(held_out_registry, tmp_path):
    stories = held_out_stories()
    with TestClient(create_app(drift_settings(held_out_registry, tmp_path))) as client:
        post_all(client, stories)
        body = client.get("/monitoring").json()
        metrics = client.get("/metrics").text
    assert body["window"] == len(stories) and body["status"] == "ok", body
    features = {f["feature"]: f for f in body["features"]}
    for name in ("prediction", "title_chars", "pieces", "oov_share", "domain", "form"):
        feature = features[name]
        assert feature["stories"] >= 100 and not feature["alert"], feature
        assert feature["psi"] < 0.12, feature
        assert gauge(metrics, "upvote_drift_alert", name) == 0.0
        assert gauge(metrics, "upvote_drift_psi", name) == pytest.approx(feature["psi"])
    for name in ("prediction", "title_chars", "pieces", "oov_share"):
        assert features[name]["ks"] < 0.1, features[name]
    assert "hour" not in features  # the reference covers ten hours: not profiled
    assert gauge(metrics, "upvote_drift_window_stories") == len(stories)


def test_encyclopedia_sentences_raise_drift_alerts_and_one_warning(
    trained_dir, tmp_path, caplog, monkeypatch
):
    monkeypatch.setattr(drift, "CACHE_SECONDS", 0.0)  # every read computes
    settings = drift_settings(trained_dir, tmp_path)
    with TestClient(create_app(settings)) as client:
        post_all(client, wikipedia_stories(150))
        for i in range(60):  # the MLX contract: no url (no domain), a time
            story = {"title": WIKIPEDIA[i % len(WIKIPEDIA)], "timestamp": 1700000000 + i}
            assert client.post("/how_many_upvotes", json=story).status_code == 200
        with caplog.at_level(logging.WARNING, logger="upvote.serve.drift"):
            body = client.get("/monitoring").json()
            metrics = client.get("/metrics").text
            client.get("/monitoring")  # a second computation: no second warning
    assert body["status"] == "drift" and body["window"] == 210
    assert body["reference"].startswith("validation split")
    features = {f["feature"]: f for f in body["features"]}
    for name in ("title_chars", "pieces", "oov_share", "domain"):
        assert features[name]["alert"] and features[name]["psi"] > 0.5, features[name]
        assert gauge(metrics, "upvote_drift_alert", name) == 1.0
    assert features["title_chars"]["ks"] > 0.9
    assert gauge(metrics, "upvote_drift_ks", "title_chars") == pytest.approx(
        features["title_chars"]["ks"]
    )
    assert features["domain"]["stories"] == 150  # /how_many_upvotes' stories have no url
    warnings = [r.getMessage() for r in caplog.records if "title_chars" in r.getMessage()]
    assert len(warnings) == 1 and "PSI" in warnings[0], warnings


def test_a_model_swap_starts_a_new_window_and_a_bundle_without_profile_still_serves(
    trained_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(drift, "CACHE_SECONDS", 0.0)
    settings = drift_settings(trained_dir, tmp_path)
    first = load_model(registry_dir=settings.models_dir).version
    old = settings.models_dir / "old-bundle"
    shutil.copytree(settings.models_dir / first, old)
    (old / "profile.json").unlink()
    auth = {"Authorization": "Bearer drift-admin"}
    try:
        with TestClient(create_app(settings)) as client:
            post_all(client, wikipedia_stories(120))
            assert client.get("/monitoring").json()["window"] == 120
            swapped = client.post("/admin/reload", headers=auth, json={"version": "old-bundle"})
            assert swapped.status_code == 200, swapped.text
            body = client.get("/monitoring").json()
            assert body == {**body, "version": "old-bundle", "window": 0, "status": NO_PROFILE}
            post_all(client, wikipedia_stories(120))  # still answered
            metrics = client.get("/metrics").text
            assert gauge(metrics, "upvote_drift_psi", "title_chars") is None
            assert gauge(metrics, "upvote_drift_window_stories") == 120
            back = client.post("/admin/reload", headers=auth, json={"version": first})
            assert back.status_code == 200
            body = client.get("/monitoring").json()
            assert body["version"] == first and body["window"] == 0
            assert body["status"] == "not enough data"
    finally:
        shutil.rmtree(old)


def test_the_service_with_drift_imports_neither_torch_nor_scikit_learn(trained_dir, tmp_path):
    code = f"""
import sys
from fastapi.testclient import TestClient
from upvote.serve.app import create_app
from upvote.serve.config import ServeSettings
settings = ServeSettings(data_dir={str(trained_dir)!r}, log_dir={str(tmp_path)!r})
with TestClient(create_app(settings)) as client:
    client.post("/predict", json={{"stories": [{{"title": "Show HN: x", "url": "https://a.b"}}]}})
    assert client.get("/monitoring").status_code == 200
    assert "upvote_drift_window_stories 1.0" in client.get("/metrics").text
print(sorted(m for m in ("torch", "sklearn", "scipy.stats", "mlflow") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def monitor_cli(trained_dir, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "UPVOTE_DATA_DIR": str(trained_dir), "UPVOTE_DRIFT_MIN_STORIES": "50"}
    command = [sys.executable, "-m", "upvote", "monitor", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_upvote_monitor_drift_reads_the_log_of_a_real_server(start_server, trained_dir, tmp_path):
    server, url = start_server(tmp_path / "logs")
    stories = wikipedia_stories(80)
    response = httpx.post(f"{url}/predict", json={"stories": stories}, timeout=30)
    assert response.status_code == 200, response.text
    version = response.json()["version"]
    for i in range(20):
        story = {"title": WIKIPEDIA[i % len(WIKIPEDIA)], "author": "x", "timestamp": 1700000000}
        assert httpx.post(f"{url}/how_many_upvotes", json=story, timeout=30).status_code == 200
    server.terminate()  # a normal stop writes the buffered records
    server.wait(timeout=30)

    done = monitor_cli(trained_dir, "--drift", "--log-dir", str(tmp_path / "logs"))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"model {version}" in out and "window: 100 stories from the prediction log" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    for name in ("prediction", "title_chars", "pieces", "oov_share", "domain", "form"):
        assert name in rows, out
    assert rows["title_chars"][2] == "100" and rows["title_chars"][5] == "drift"
    assert float(rows["title_chars"][3]) > 1  # PSI
    assert rows["domain"][2] == "80"  # /how_many_upvotes records have no url
    assert rows["form"][5] == "drift"  # no Show/Ask HN among them
    assert "status: drift" in out


def test_upvote_monitor_errors_are_one_line(trained_dir, tmp_path):
    cases = [
        ([], "no prediction logs in"),  # live accuracy, the default
        (["--last", "5"], "--since and --last go with --drift"),
        (["--drift", "--log-dir", str(tmp_path)], "no prediction log records"),
        (["--drift", "--since", "last tuesday"], "--since last tuesday: not a time"),
        (["--drift", "--since", "cutoff"], "no pulled stories after"),
        (["--drift", "--model", "nope"], "--model nope: unknown model version"),
        (["--drift", "--since", "cutoff", "--log-dir", "x"], "exclude each other"),
    ]
    for args, message in cases:
        done = monitor_cli(trained_dir, *args)
        assert done.returncode == 1, (args, done.stdout)
        assert message in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
