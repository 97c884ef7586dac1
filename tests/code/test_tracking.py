"""MLflow tracking of `upvote train` and `upvote embed train` against real stores: the default
SQLite file, a real PostgreSQL server, one that cannot be reached, and tracking turned off."""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from upvote.cli import app
from upvote.serve.deploy import free_port
from upvote.settings import get_settings
from upvote.tracking.cli import ui_command

mlflow = pytest.importorskip("mlflow", reason="tracking needs the mlops extra")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from pgserver import PostgresServer, find_bin_dir  # noqa: E402

QUICK = ["train", "--quick", "--max-rows", "300"]


def client_for(uri: str):
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def only_run(client, experiment: str, parent_only: bool = True):
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    runs = client.search_runs([found.experiment_id])
    if parent_only:
        runs = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0], found


def test_a_quick_train_logs_its_run_nested_embedding_run_and_registry_version(
    isolated_data_dir,
):
    trained = CliRunner().invoke(app, QUICK)
    assert trained.exit_code == 0, trained.output
    assert "tracked: MLflow run" in trained.output and "tracking off" not in trained.output
    bundle = (isolated_data_dir / "models" / "latest").resolve()
    metadata = json.loads((bundle / "metadata.json").read_text())

    uri = f"sqlite:///{isolated_data_dir / 'mlflow' / 'mlflow.db'}"
    client = client_for(uri)
    run, experiment = only_run(client, "upvote-train")
    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    # every option, the data snapshot and the code version
    assert params["max_rows"] == "300" and params["model"] == "mlp"
    assert params["data_snapshot"] == metadata["data_snapshot"]
    assert params["code_version"] == metadata["code_version"]
    hidden = metadata["options"]["regressor"]["hidden"]
    assert json.loads(params["regressor.hidden"]) == list(hidden)
    assert tags["upvote.version"] == bundle.name and tags["upvote.rows"] == "unbiased"
    assert tags["upvote.bundle"] == str(bundle)
    # test metrics equal the bundle's; one loss value per epoch
    ours = metadata["metrics"]["ours"]
    assert metrics["test.ours.spearman"] == pytest.approx(ours["spearman"])
    assert metrics["test.tfidf_ridge.log_r2"] == pytest.approx(
        metadata["metrics"]["tfidf_ridge"]["log_r2"]
    )
    curve = client.get_metric_history(run.info.run_id, "epoch.valid_mse")
    assert [m.step for m in curve] == [row["epoch"] for row in metadata["history"]]
    assert [m.value for m in curve] == pytest.approx([r["valid_mse"] for r in metadata["history"]])
    assert metrics["system.peak_rss_mb"] > 50 and metrics["seconds.total"] > 0
    # artifacts: the report and the bundle's metadata
    files = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert "report/report.html" in files and "report/loss_curves.png" in files
    local = Path(client.download_artifacts(run.info.run_id, "bundle/metadata.json"))
    assert json.loads(local.read_text())["version"] == bundle.name
    # the embedding run is nested in the train run
    children = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get("mlflow.parentRunId") == run.info.run_id
    ]
    assert [c.info.run_name for c in children] == ["embedding"]
    assert children[0].data.params["word2vec.vector_size"] == "32"
    curve = client.get_metric_history(children[0].info.run_id, "word2vec.loss")
    assert len(curve) == len(metadata["word2vec_curve"]) >= 1
    assert [m.step for m in curve] == [w for w, _, _ in metadata["word2vec_curve"]]
    # the bundle is a version of the registered model "upvote", with its folder as source
    versions = client.search_model_versions("name = 'upvote'")
    assert [v.tags["upvote.version"] for v in versions] == [bundle.name]
    assert versions[0].source == bundle.as_uri() and versions[0].run_id == run.info.run_id


def test_tracking_off_or_unreachable_store_trains_anyway_and_says_so_once(
    isolated_data_dir, monkeypatch
):
    monkeypatch.setenv("UPVOTE_TRACKING", "0")
    get_settings.cache_clear()
    off = CliRunner().invoke(app, QUICK)
    assert off.exit_code == 0, off.output
    assert off.output.count("tracking off") == 1 and "tracked:" not in off.output
    assert not (isolated_data_dir / "mlflow").exists()

    port = free_port()  # a port nobody listens on
    monkeypatch.setenv("UPVOTE_TRACKING", "1")
    monkeypatch.setenv(
        "UPVOTE_TRACKING_URI", f"postgresql+psycopg://u:s3cr3t-pw@127.0.0.1:{port}/x"
    )
    get_settings.cache_clear()
    start = time.monotonic()
    down = CliRunner().invoke(app, QUICK)
    assert down.exit_code == 0, down.output
    # refused at once: not MLflow's ~100 s of retries, nor the client's 60 s wait for an answer
    assert time.monotonic() - start < 45, down.output
    assert down.output.count("tracking off") == 1, down.output
    assert "Connection refused" in down.output
    assert "s3cr3t-pw" not in down.output and "u:***@127.0.0.1" in down.output
    assert len(list((isolated_data_dir / "models").glob("2*"))) == 2  # both trained


def wait_for_json(url: str, seconds: float = 90.0) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return json.load(answer)
        except OSError:
            assert time.monotonic() < deadline, f"{url} did not answer in {seconds:g} s"
            time.sleep(0.5)


@pytest.mark.skipif(find_bin_dir() is None, reason="PostgreSQL binaries (initdb) not found")
def test_postgresql_stores_direct_and_behind_a_shared_tracking_server(monkeypatch, tmp_path):
    """One machine writes to the database itself; many machines share an `mlflow server` whose
    backend is that PostgreSQL and which proxies the artifacts."""
    server = PostgresServer.start()
    try:
        uri = server.clone("mlflow").replace("postgresql://", "postgresql+psycopg://")
        monkeypatch.setenv("UPVOTE_TRACKING_URI", uri)
        get_settings.cache_clear()
        trained = CliRunner().invoke(app, QUICK)
        assert trained.exit_code == 0, trained.output
        assert "tracked: MLflow run" in trained.output
        run, _ = only_run(client_for(uri), "upvote-train")
        metadata = json.loads((get_settings().models_dir / "latest" / "metadata.json").read_text())
        spearman = metadata["metrics"]["ours"]["spearman"]
        assert run.data.metrics["test.ours.spearman"] == pytest.approx(spearman)
        assert client_for(uri).search_model_versions("name = 'upvote'")
        # the artifacts sit under the data folder, not in the folder the command ran from
        assert run.info.artifact_uri.startswith((get_settings().mlflow_dir).resolve().as_uri())
        assert not Path("mlruns").exists()

        port = free_port()
        shared = server.clone("mlflow_shared").replace("postgresql://", "postgresql+psycopg://")
        command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", shared,
                   "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1",
                   "--port", str(port), "--workers", "1"]  # fmt: skip
        tracking_server = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_json(f"{url}/ajax-api/2.0/mlflow/experiments/search?max_results=1")
            monkeypatch.setenv("UPVOTE_TRACKING_URI", url)
            get_settings.cache_clear()
            trained = CliRunner().invoke(app, QUICK)
            assert trained.exit_code == 0, trained.output
            assert "tracked: MLflow run" in trained.output
            run, _ = only_run(client_for(url), "upvote-train")
            files = {a.path for a in client_for(url).list_artifacts(run.info.run_id, "report")}
            assert "report/report.html" in files
            assert list((tmp_path / "artifacts").rglob("report.html"))  # proxied by the server
            # the server wrote to PostgreSQL: the run is in its database
            assert only_run(client_for(shared), "upvote-train")[0].info.run_id == run.info.run_id
        finally:
            tracking_server.terminate()
            tracking_server.wait(10)
    finally:
        server.stop()


def test_embed_train_logs_params_phases_and_the_loss_curve(isolated_data_dir, tmp_path):
    corpus = tmp_path / "corpus.txt"
    words = "the cat sat on the mat while the dog ran in the park " * 4000
    corpus.write_text(words)
    out = tmp_path / "vectors"
    args = ["embed", "train", str(corpus), "--out", str(out), "--dim", "8", "--min-count", "1"]
    trained = CliRunner().invoke(app, args)
    assert trained.exit_code == 0, trained.output
    client = client_for(f"sqlite:///{isolated_data_dir / 'mlflow' / 'mlflow.db'}")
    run, _ = only_run(client, "upvote-embed")
    assert run.data.params["vector_size"] == "8" and run.data.params["tokenizer"] == "word"
    metrics = run.data.metrics
    assert metrics["corpus.tokens"] == len(words.split())
    assert metrics["corpus.vocabulary"] == len(set(words.split()))
    assert metrics["words_per_second"] > 0
    assert {"seconds.encode", "seconds.train", "seconds.write"} <= set(metrics)
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"params.json"}


def test_upvote_ui_serves_the_runs(isolated_data_dir):
    trained = CliRunner().invoke(app, QUICK)
    assert trained.exit_code == 0, trained.output
    port = free_port()
    ui = subprocess.Popen(
        ui_command("127.0.0.1", port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        found = wait_for_json(
            f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=10"
        )
        names = {e["name"] for e in found["experiments"]}
        assert "upvote-train" in names
    finally:
        ui.terminate()  # MLflow's server can take a while to stop on a loaded machine
        try:
            ui.wait(60)
        except subprocess.TimeoutExpired:
            ui.kill()
            ui.wait()


def test_promote_and_rollback_are_mirrored_to_mlflow_aliases(isolated_data_dir):
    runner = CliRunner()
    for _ in range(2):
        trained = runner.invoke(app, QUICK)
        assert trained.exit_code == 0, trained.output
    client = client_for(f"sqlite:///{isolated_data_dir / 'mlflow' / 'mlflow.db'}")
    number = {
        v.tags["upvote.version"]: str(v.version)
        for v in client.search_model_versions("name = 'upvote'")
    }
    first, second = sorted(number)

    def mlflow_aliases() -> dict[str, str]:
        found = client.get_registered_model("upvote").aliases
        return {alias: str(version) for alias, version in found.items()}

    assert mlflow_aliases() == {"champion": number[first], "challenger": number[second]}
    promoted = runner.invoke(app, ["models", "promote", second, "--reason", "better"])
    assert promoted.exit_code == 0, promoted.output
    assert mlflow_aliases() == {"champion": number[second]}  # no longer a challenger
    rolled = runner.invoke(app, ["models", "rollback", "--reason", "worse live"])
    assert rolled.exit_code == 0, rolled.output
    assert mlflow_aliases() == {"champion": number[first]}
