import subprocess
import sys

from typer.testing import CliRunner

from upvote import __version__
from upvote.cli import app
from upvote.data.dataset import default_dataset_dir, load_stories
from upvote.data.schema import UNBIASED, UNFILTERED
from upvote.model.registry import aliases, list_versions


def test_version_flag_prints_package_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == __version__


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "upvote", "--help"], capture_output=True, text=True, check=True
    )
    for group in ("data", "tokenizer", "embed", "models", "train", "evaluate", "predict", "serve"):
        assert group in out.stdout


def test_train_on_a_pulled_csv_without_a_selection_column(tmp_path):
    """A user's own export has no `selection`: it is every story they have, so it trains."""
    stories = load_stories()
    mine = stories[stories["selection"].isin(UNBIASED) & stories["time"].notna()].tail(300)
    csv = tmp_path / "my.csv"
    mine.drop(columns=["selection", "source"]).to_csv(csv, index=False)
    runner = CliRunner()
    pulled = runner.invoke(app, ["data", "pull", "--source", str(csv)])
    assert pulled.exit_code == 0, pulled.output
    assert set(load_stories()["selection"]) == {UNFILTERED}
    trained = runner.invoke(app, ["train", "--quick", "--max-rows", "200"])
    assert trained.exit_code == 0, trained.output
    assert f"training on the pulled dataset at {default_dataset_dir()} (300 rows)" in trained.output


def test_predict_refuses_an_output_folder_that_does_not_exist(tmp_path):
    (tmp_path / "in.csv").write_text("title\nhello\n")
    out = tmp_path / "nonexistent" / "dir" / "x.csv"
    result = CliRunner().invoke(app, ["predict", "-i", str(tmp_path / "in.csv"), "-o", str(out)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: --output {out}: the folder {out.parent} does not exist"
    ]
    assert not out.parent.parent.exists()


def test_train_if_stale_reuses_a_current_model_and_retrains_when_the_data_changes(tmp_path):
    runner = CliRunner()
    quick = ["train", "--quick", "--max-rows", "200", "--if-stale"]
    first = runner.invoke(app, quick)
    assert first.exit_code == 0, first.output
    assert "training on the shipped sample" in first.output
    assert len(list_versions()) == 1

    again = runner.invoke(app, quick)
    assert again.exit_code == 0, again.output
    assert f"model {list_versions()[0]} is current" in again.output
    assert "training on" not in again.output and len(list_versions()) == 1

    first_version = list_versions()[0]
    assert aliases()["champion"] == first_version  # a registry's first model is its champion
    other_options = runner.invoke(app, [*quick, "--dim", "8", "--promote"])
    assert other_options.exit_code == 0, other_options.output
    assert "training on" in other_options.output
    second = aliases()["champion"]
    assert second == aliases()["latest"] != first_version
    assert f"champion: {second} (was {first_version})" in other_options.output

    stories = load_stories()
    mine = stories[stories["selection"].isin(UNBIASED) & stories["time"].notna()].tail(300)
    mine.to_csv(tmp_path / "my.csv", index=False)
    assert runner.invoke(app, ["data", "pull", "--source", str(tmp_path / "my.csv")]).exit_code == 0
    new_data = runner.invoke(app, quick)
    assert new_data.exit_code == 0, new_data.output
    assert "training on the pulled dataset" in new_data.output
