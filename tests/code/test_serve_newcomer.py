"""What a new user of the service met: docs that need the internet, a service started before any
model, `?k=` on /similar, and 422s that echo a whole oversized input."""

import re
import shutil

from fastapi.testclient import TestClient

from upvote.serve.app import create_app
from upvote.serve.config import ServeSettings

STORY = {"author": "pg", "title": "Show HN: A tiny word2vec in PyTorch", "timestamp": 1700000000}


def test_api_docs_load_nothing_from_the_internet(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "upvote" in page.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text), page.text
    assert "cdn" not in page.text.lower()
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert {a.rsplit(".", 1)[-1] for a in assets} >= {"js", "css"}
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    openapi_url = re.search(r"""url: ['"]([^'"]+)['"]""", page.text).group(1)
    assert client.get(openapi_url).json()["info"]["title"] == "upvote"


def test_a_model_trained_after_the_service_started_is_picked_up(trained_dir, tmp_path):
    """`upvote serve` first, `upvote train` next: the service finds the model by itself."""
    settings = ServeSettings(data_dir=tmp_path, log_dir=tmp_path / "logs", model_retry_seconds=0)
    with TestClient(create_app(settings)) as client:
        waiting = client.post("/how_many_upvotes", json=STORY)
        assert waiting.status_code == 503
        assert "upvote train" in waiting.json()["detail"]
        assert "no restart" in waiting.json()["detail"]
        assert client.get("/health").status_code == 503
        shutil.copytree(trained_dir / "models", tmp_path / "models")  # as `upvote train` does
        answered = client.post("/how_many_upvotes", json=STORY)
        assert answered.status_code == 200, answered.text
        assert client.get("/health").json()["model_loaded"] is True


def test_similar_takes_k_as_well_as_topn(client):
    word = client.app.state.holder.model.vectors.index_to_key[50]
    for name in ("k", "topn"):
        response = client.get("/similar", params={"word": word, name: 3})
        assert response.status_code == 200, response.text
        assert len(response.json()["similar"]) == 3
    assert client.get("/similar", params={"word": word, "k": 0}).status_code == 422


def test_a_422_does_not_echo_a_huge_input(client):
    title = "x" * 100_000
    for path, body in (
        ("/how_many_upvotes", {"title": title}),
        ("/predict", {"stories": [{"title": title}]}),
        ("/how_many_upvotes", {"titel": title}),  # the whole body is the input of "missing"
    ):
        response = client.post(path, json=body)
        assert response.status_code == 422, response.text
        assert len(response.content) < 2_000, (path, len(response.content))
        assert "title" in response.text


def test_deploy_reads_its_podman_flags_like_every_setting(tmp_path, monkeypatch):
    """UPVOTE_PODMAN / UPVOTE_PODMAN_RUN_ARGS are settings: the environment or a .env file."""
    from upvote.serve.deploy import Deployment

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UPVOTE_PODMAN", raising=False)
    monkeypatch.setenv("UPVOTE_PODMAN_RUN_ARGS", "--ulimit nofile=20000:20000")
    (tmp_path / ".env").write_text('UPVOTE_PODMAN="podman --runtime runc"\n')
    deployment = Deployment(name="x", registry="127.0.0.1:5000", port=8000, data_dir=tmp_path)
    assert deployment.podman == ["podman", "--runtime", "runc"]
    assert deployment.run_args == ["--ulimit", "nofile=20000:20000"]
