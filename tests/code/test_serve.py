"""The HTTP service on a real (small) trained model, through FastAPI's TestClient."""

import json
import shutil
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from upvote.serve.app import create_app
from upvote.serve.config import ServeSettings
from upvote.serve.predlog import FLUSH_SECONDS
from upvote.serve.schemas import EARLIEST, HowManyUpvotesIn, latest_allowed

STORY = {"author": "pg", "title": "Show HN: A tiny word2vec in PyTorch", "timestamp": 1700000000}


def error_fields(response) -> list[str]:
    assert response.status_code == 422, response.text
    return [str(error["loc"][-1]) for error in response.json()["detail"]]


def test_mlx_contract(client):
    assert client.get("/ping").json() == "ok"
    version = client.get("/version").json()["version"]
    assert version
    response = client.post("/how_many_upvotes", json=STORY)
    assert response.status_code == 200, response.text
    upvotes = response.json()["upvotes"]
    assert isinstance(upvotes, float) and upvotes >= 0
    logs = client.get("/logs").json()["logs"]
    assert len(logs) == 1
    record = logs[0]
    assert set(record) == {"Timestamp", "Version", "Input", "Prediction", "Latency"}
    assert record["Version"] == version and record["Prediction"] == upvotes
    assert record["Input"]["title"] == STORY["title"] and record["Latency"] > 0


def test_logs_survive_a_restart(settings):
    with TestClient(create_app(settings)) as first:
        first.post("/how_many_upvotes", json=STORY)
        first.post("/how_many_upvotes", json={**STORY, "title": "Ask HN: Second story"})
    with TestClient(create_app(settings)) as second:
        titles = [r["Input"]["title"] for r in second.get("/logs").json()["logs"]]
    assert titles == [STORY["title"], "Ask HN: Second story"]
    version = second.app.state.holder.model.version
    assert (settings.logs_dir / f"predictions-{version}.jsonl").exists()


def test_the_log_file_gets_each_prediction_within_seconds(client, settings):
    """Records are queued, and the service writes them out every FLUSH_SECONDS."""
    client.post("/how_many_upvotes", json=STORY)
    path = settings.logs_dir / f"predictions-{client.get('/version').json()['version']}.jsonl"
    deadline = time.monotonic() + 3 * FLUSH_SECONDS + 2
    while time.monotonic() < deadline and not (path.exists() and path.read_bytes()):
        time.sleep(0.05)
    assert json.loads(path.read_bytes())["Input"]["title"] == STORY["title"]


def test_same_story_same_prediction_in_every_endpoint(client):
    mlx = client.post("/how_many_upvotes", json=STORY).json()["upvotes"]
    story = {"title": STORY["title"], "by": "pg", "time": STORY["timestamp"]}
    batch = client.post("/predict", json={"stories": [story, {"title": "Rust 2.0 released"}]})
    assert batch.status_code == 200, batch.text
    first, second = batch.json()["predictions"]
    assert first["predicted_score"] == pytest.approx(mlx)
    for row in (first, second):
        assert row["p10"] <= row["p50"] <= row["p90"]
        assert 0 <= row["p_reach_100"] <= 1


def test_explain_gives_words_factors_and_reaches_the_log(client):
    story = {"title": "Why Rust is faster than Python", "url": "https://github.com/a/b"}
    response = client.post("/explain", json={**story, "by": "pg", "time": "2016-09-20T10:00Z"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert 0 <= body["percentile"] <= 100
    assert [w["word"] for w in body["words"]] == story["title"].split()
    factors = {f["factor"]: f for f in body["factors"]}
    assert set(factors) == {"domain history", "author history", "time", "title form"}
    assert factors["domain history"]["detail"].startswith("github.com/a")
    assert factors["time"]["detail"] == "2016-09-20 10:00 UTC"
    assert all(isinstance(f["contribution"], float) for f in body["factors"])
    # the page's predictions are predictions too: they reach /logs
    logs = client.get("/logs").json()["logs"]
    assert [r["Input"]["title"] for r in logs] == [story["title"]]


def test_url_field_absent_null_or_given_are_three_stories(client):
    """Absent: url unknown (the MLX contract has none); null: a text post; or a domain."""
    title = {"title": "A database in Rust"}
    stories = [title, {**title, "url": None}, {**title, "url": "https://github.com/x/y"}]
    rows = client.post("/predict", json={"stories": stories}).json()["predictions"]
    scores = [row["predicted_log1p"] for row in rows]
    assert len(set(scores)) == 3
    mlx = client.post("/how_many_upvotes", json={"title": title["title"]}).json()["upvotes"]
    assert mlx == pytest.approx(rows[0]["predicted_score"])


def test_similar_words(client):
    word = client.app.state.holder.model.vectors.index_to_key[50]
    response = client.get("/similar", params={"word": word, "topn": 5})
    assert response.status_code == 200, response.text
    similar = response.json()["similar"]
    assert len(similar) == 5 and word not in [s["token"] for s in similar]
    sims = [s["similarity"] for s in similar]
    assert sims == sorted(sims, reverse=True)
    piece = next(
        k
        for k in client.app.state.holder.model.vectors.index_to_key
        if k[0] == "\u2581" and len(k) > 2
    )
    plain = client.get("/similar", params={"word": piece[1:]})  # a word, not a piece
    assert plain.status_code == 200 and plain.json()["word"] == piece
    missing = client.get("/similar", params={"word": "qqzzxxnotaword"})
    assert missing.status_code == 404 and "qqzzxxnotaword" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 301}, "title"),
        ({"title": 123}, "title"),
        ({"author": "pg"}, "title"),
        ({"title": "ok", "timestamp": "yesterday"}, "timestamp"),
        ({"title": "ok", "timestamp": "1990-01-01T00:00:00Z"}, "timestamp"),
        ({"title": "ok", "timestamp": 99999999999}, "timestamp"),
        ({"title": "ok", "author": ["pg"]}, "author"),
        ({"title": "ok", "titel": "typo"}, "titel"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, body, field):
    assert field in error_fields(client.post("/how_many_upvotes", json=body))


def test_batches_are_bounded(client, settings):
    too_many = {"stories": [{"title": f"story {i}"} for i in range(settings.max_batch + 1)]}
    assert "stories" in error_fields(client.post("/predict", json=too_many))
    assert "stories" in error_fields(client.post("/predict", json={"stories": []}))
    assert "title" in error_fields(client.post("/predict", json={"stories": [{"url": "x"}]}))


def test_unexpected_errors_are_a_500_without_traceback(settings):
    app = create_app(settings)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert "secret" not in response.text and "Traceback" not in response.text


def test_no_model_yet_is_a_503_not_a_crash(tmp_path):
    empty = ServeSettings(data_dir=tmp_path, log_dir=tmp_path / "logs")
    with TestClient(create_app(empty)) as client:
        assert client.get("/ping").status_code == 200
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["model_loaded"] is False
        assert client.post("/how_many_upvotes", json=STORY).status_code == 503


def test_metrics_count_requests_and_predictions(client):
    for _ in range(3):
        client.post("/how_many_upvotes", json=STORY)
    client.post("/how_many_upvotes", json={"title": ""})
    text = client.get("/metrics").text
    assert (
        'upvote_http_requests_total{endpoint="/how_many_upvotes",method="POST",status="200"} 3.0'
        in text
    )
    assert 'endpoint="/how_many_upvotes",method="POST",status="422"} 1.0' in text
    assert 'upvote_http_request_seconds_count{endpoint="/how_many_upvotes"} 4.0' in text
    assert "upvote_predicted_score_count 3.0" in text


def test_reload_needs_the_token_and_refuses_broken_bundles(client, settings):
    version = client.get("/version").json()["version"]
    assert client.post("/admin/reload").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/admin/reload", headers=wrong).status_code == 401

    auth = {"Authorization": f"Bearer {settings.admin_token}"}
    broken = settings.models_dir / "broken"
    shutil.copytree(settings.models_dir / version, broken)
    for file in broken.iterdir():
        if file.is_file():
            file.write_bytes(b"\0garbage")
    try:
        refused = client.post("/admin/reload", headers=auth, json={"version": "broken"})
    finally:
        shutil.rmtree(broken)
    assert refused.status_code == 409 and "broken" in refused.json()["detail"]
    assert client.get("/version").json()["version"] == version  # the old model keeps serving
    assert client.post("/how_many_upvotes", json=STORY).status_code == 200

    reloaded = client.post("/admin/reload", headers=auth)
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json() == {"previous": version, "version": version}


def test_reload_is_disabled_without_a_configured_token(trained_dir, tmp_path):
    settings = ServeSettings(data_dir=trained_dir, log_dir=tmp_path, admin_token=None)
    with TestClient(create_app(settings)) as client:
        response = client.post("/admin/reload", headers={"Authorization": "Bearer "})
    assert response.status_code == 403


def test_openapi_documents_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ["/ping", "/version", "/how_many_upvotes", "/logs", "/predict", "/explain",
                 "/similar", "/health", "/metrics", "/admin/reload"]:  # fmt: skip
        assert path in paths


def test_reload_swaps_versions_under_traffic_without_failing_a_request(client, settings):
    """A second version (a copy of the bundle under a new name) is swapped in while requests run."""
    import threading

    first = client.get("/version").json()["version"]
    shutil.copytree(settings.models_dir / first, settings.models_dir / "second")
    auth = {"Authorization": f"Bearer {settings.admin_token}"}
    statuses, stop = [], threading.Event()

    def traffic():
        while not stop.is_set():
            statuses.append(client.post("/how_many_upvotes", json=STORY).status_code)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        for version in ["second", first, "second"]:
            answer = client.post("/admin/reload", headers=auth, json={"version": version})
            assert answer.status_code == 200 and answer.json()["version"] == version
    finally:
        stop.set()
        worker.join()
        shutil.rmtree(settings.models_dir / "second", ignore_errors=True)
    assert statuses and set(statuses) == {200}
    assert client.get("/version").json()["version"] == "second"
    # every prediction was logged once, in the file of the version that answered it
    predlog = client.app.state.predlog
    logged = {v: [r["Version"] for r in predlog.tail(v, 10_000)] for v in (first, "second")}
    assert sum(map(len, logged.values())) == len(statuses)
    assert all(set(versions) <= {v} for v, versions in logged.items())


def test_how_many_upvotes_documents_its_body_and_rejects_malformed_json(client):
    operation = client.get("/openapi.json").json()["paths"]["/how_many_upvotes"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert {"author", "title", "timestamp"} <= set(schema["properties"])
    assert "title" in schema["required"]
    for raw in (b"{not json", b"[]", b""):
        response = client.post(
            "/how_many_upvotes", content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422 and response.json()["detail"][0]["loc"][0] == "body"


def test_timestamps_up_to_one_year_ahead_are_accepted_every_time():
    """The bound is read from the clock only for a timestamp past the last bound computed:
    in any order, a time within a year is valid and one past it is not."""
    now = datetime.now(UTC)
    within, past = now + timedelta(days=360), now + timedelta(days=370)
    for timestamp in (within, past, within, past, now, EARLIEST - timedelta(seconds=1)):
        valid = EARLIEST <= timestamp <= latest_allowed()
        try:
            HowManyUpvotesIn.model_validate({"title": "t", "timestamp": timestamp.isoformat()})
        except ValidationError as error:
            assert not valid and error.errors()[0]["loc"] == ("timestamp",)
        else:
            assert valid
    leap_day = datetime(2028, 2, 29, 9, tzinfo=UTC)  # was a ValueError: every timestamp a 422
    assert latest_allowed(leap_day) == datetime(2029, 2, 28, 9, tzinfo=UTC)
    assert latest_allowed(datetime(2027, 3, 1, tzinfo=UTC)) == datetime(2028, 3, 1, tzinfo=UTC)
