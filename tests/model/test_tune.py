"""`upvote tune`: real Optuna studies (SQLite in the test's data dir; PostgreSQL when installed)
on the quick budget, and `upvote train --params` retraining the best trial."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from upvote.cli import app
from upvote.model.train import TrainOptions, build, quick_options
from upvote.model.tune import default_storage, study_dir, tune
from upvote.model.tune_report import importances, write_report
from upvote.settings import get_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from pgserver import PostgresServer, find_bin_dir

# The quick space's bounds of lr: after one epoch (13 steps) the top one has learned the mean,
# the bottom one has not, so the median pruner (one startup trial) stops the second trial.
GOOD = {"regressor.lr": 1e-2}
BAD = {"regressor.lr": 3e-4}
UNTRAINABLE = {"word2vec.min_count": 10**6}  # out of the space: no piece has a vector
OUT_OF_SPACE = pytest.mark.filterwarnings("ignore:Fixed parameter word2vec.min_count")


def study_at(storage: str, name: str = "upvote") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage)


def enqueue(*params: dict, name: str = "upvote") -> None:
    study = optuna.create_study(study_name=name, storage=default_storage(), direction="minimize")
    for p in params:
        study.enqueue_trial(p)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """`upvote tune --quick --trials 4` in its own data dir, the first two trials enqueued."""
    data_dir = tmp_path_factory.mktemp("upvote-tune")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UPVOTE_DATA_DIR", str(data_dir))
        get_settings.cache_clear()
        enqueue(GOOD, BAD)
        result = CliRunner().invoke(app, ["tune", "--quick", "--trials", "4", "--max-rows", "3000"])
        assert result.exit_code == 0, result.output
        yield data_dir, result.output, study_at(default_storage())
    get_settings.cache_clear()


def test_tune_records_the_study_best_json_and_report(tuned):
    data_dir, output, study = tuned
    states = [t.state for t in study.trials]
    assert len(states) == 4 and states[0] == optuna.trial.TrialState.COMPLETE
    assert states[1] == optuna.trial.TrialState.PRUNED
    assert study.trials[1].intermediate_values.keys() == {1}  # stopped after its first epoch
    assert "trial 1: pruned after epoch 1" in output
    best = json.loads((data_dir / "tune" / "upvote" / "best.json").read_text())
    assert best["study"] == "upvote" and best["trial"] == study.best_trial.number
    assert best["value"] == study.best_value
    assert best["options"] == study.best_trial.user_attrs["options"]
    options = TrainOptions.from_dict(best["options"])
    assert options.max_rows == 3000 and options.regressor.hidden == (32,)
    assert options.regressor.lr == study.best_trial.params["regressor.lr"]
    # the objective is the best epoch's validation MSE, from the history the trial kept
    history = study.best_trial.user_attrs["history"]
    assert study.best_value == min(h["valid_mse"] for h in history)
    report = (data_dir / "tune" / "upvote" / "report.html").read_text()
    assert "Optimisation history" in report and '<img src="history.png"' in report
    assert (data_dir / "tune" / "upvote" / "history.png").stat().st_size > 0
    assert "<td>pruned</td>" in report and report.count("<td>complete</td>") >= 1


def test_the_study_and_every_trial_are_mlflow_runs(tuned):
    mlflow = pytest.importorskip("mlflow", reason="tracking needs the mlops extra")
    data_dir, output, study = tuned
    uri = f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("upvote-tune").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [p.info.run_name for p in parents] == ["study upvote"]
    parent = parents[0]
    assert f"tracked: MLflow run {parent.info.run_id}" in output
    assert parent.data.metrics["best_valid_mse"] == pytest.approx(study.best_value)
    assert parent.data.metrics["trials.pruned"] >= 1
    files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"best.json", "report.html", "history.png"} <= files
    trials = {r.data.tags["optuna.trial"]: r for r in runs if r is not parent}
    assert len(trials) == len(study.trials)
    for trial in study.trials:
        run = trials[str(trial.number)]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["optuna.state"] == trial.state.name
        curve = client.get_metric_history(run.info.run_id, "epoch.valid_mse")
        assert [(m.step, m.value) for m in curve] == sorted(trial.intermediate_values.items())
        assert run.data.params["search.regressor.lr"] == str(trial.params["regressor.lr"])


def test_train_with_params_best_retrains_the_best_trial(tuned, monkeypatch):
    data_dir, _, _ = tuned
    monkeypatch.setenv("UPVOTE_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    args = ["train", "--quick", "--params", "best", "--dropout", "0.25"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metadata = json.loads((data_dir / "models" / "latest" / "metadata.json").read_text())
    best = json.loads((data_dir / "tune" / "upvote" / "best.json").read_text())["options"]
    best["regressor"]["dropout"] = 0.25  # a given option still wins over the tuned value
    assert metadata["options"] == best


@OUT_OF_SPACE
def test_on_trial_end_sees_every_trial_and_failed_ones_do_not_stop_the_study():
    enqueue(UNTRAINABLE)
    seen, lines = [], []
    study = tune(TrainOptions(max_rows=2000), trials=2, quick=True, log=lines.append,
                 on_trial_end=seen.append)  # fmt: skip
    assert [t.state.name for t in seen] == ["FAIL", "COMPLETE"]
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    assert "vocabulary is empty" in seen[0].user_attrs["error"]
    assert lines[0].startswith("trial 0: fail") and "vocabulary is empty" in lines[0]
    assert seen[1].user_attrs["options"] == study.trials[1].user_attrs["options"]
    assert list(seen[1].intermediate_values) == [h["epoch"] for h in seen[1].user_attrs["history"]]


@OUT_OF_SPACE
def test_a_study_without_a_complete_trial_is_a_one_line_error():
    enqueue(UNTRAINABLE)
    result = CliRunner().invoke(app, ["tune", "--quick", "--trials", "1"])
    assert result.exit_code == 1
    assert "Error: study 'upvote' has no complete trial yet" in result.output
    assert (study_dir("upvote") / "report.html").is_file()  # the failed trial is in the report
    result = CliRunner().invoke(app, ["train", "--quick", "--params", "best"])
    assert result.exit_code == 1
    assert result.output.strip().endswith("--params study 'upvote' has no complete trial yet")


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "No such file or directory"),
        ("{not json", "not JSON"),
        ('{"options": {"rows": "all"}}', "not the options of a tuned trial"),
        ('{"options": {"nonsense": 1, "word2vec": {}}}', "not the options of a tuned trial"),
    ],
)
def test_bad_params_file_is_a_one_line_error(tmp_path, content, said):
    path = tmp_path / "best.json"
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(app, ["train", "--quick", "--params", str(path)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and f"Error: --params {path}: " in result.output
    assert said in result.output


def test_params_best_without_a_study_and_bad_tune_options():
    result = CliRunner().invoke(app, ["train", "--params", "best"])
    assert result.exit_code == 1 and "no study 'upvote' yet: run `upvote tune`" in result.output
    result = CliRunner().invoke(app, ["tune", "--storage", "nonsense://x", "--trials", "1"])
    assert result.exit_code == 1 and "Error: --storage nonsense://x: " in result.output
    secret = "postgresql+psycopg://me:s3cret@127.0.0.1:1/db"
    result = CliRunner().invoke(app, ["tune", "--storage", secret, "--trials", "1"])
    assert result.exit_code == 1 and "connection" in result.output
    assert "s3cret" not in result.output and result.output.count("\n") == 1
    result = CliRunner().invoke(app, ["tune", "--study", "../up"])
    assert result.exit_code == 2 and "--study" in result.output


def test_importances_need_trials_that_differ(tmp_path):
    """Optuna's importances on a real study: x decides the value, y does not."""
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + 0 * t.suggest_float("y", 0, 1), 1)
    assert importances(study) == ({}, "1 complete trial(s) are too few to rank the parameters.")
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + 0 * t.suggest_float("y", 0, 1), 29)
    found, note = importances(study)
    assert note == "" and list(found) == ["x", "y"] and found["x"] > found["y"]
    report = write_report(study, tmp_path).read_text()
    assert '<img src="importances.png"' in report and (tmp_path / "importances.png").is_file()


def test_a_study_shared_through_postgresql():
    if find_bin_dir() is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: install postgresql-15")
    server = PostgresServer.start()
    try:
        url = server.dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        args = ["tune", "--quick", "--max-rows", "2000", "--trials", "2", "--jobs", "2"]
        result = CliRunner().invoke(app, [*args, "--storage", url, "--study", "shared"])
        assert result.exit_code == 0, result.output
        study = study_at(url, "shared")  # what another machine pointed at this server reads
        assert len(study.trials) == 2
        assert all("options" in t.user_attrs for t in study.trials)
        assert (study_dir("shared") / "best.json").is_file()
    finally:
        server.stop()


def test_optuna_is_imported_only_when_tuning():
    """The service and the other commands import the CLI and upvote.model, never optuna."""
    code = "import sys, upvote.cli, upvote.model.tune, upvote.model.tune_report; "
    code += "print('optuna' in sys.modules, 'matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_on_epoch_sees_every_epoch_and_a_diverged_fit_is_a_value_error():
    """What the pruner reads, and what makes a diverged trial fail instead of ending the study."""
    options = quick_options(TrainOptions(max_rows=2000))
    epochs = []
    built = build(options, on_epoch=lambda *seen: epochs.append(seen), log=lambda _: None)
    assert epochs == [(h["epoch"], h["valid_mse"]) for h in built.history] and len(epochs) >= 2
    wild = replace(options, regressor=replace(options.regressor, lr=1e10))
    with pytest.raises(ValueError, match=r"diverged \(validation MSE nan\): lower the lr"):
        build(wild, log=lambda _: None)
