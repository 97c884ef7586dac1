"""The model registry's links and log (registry.py) and `upvote models` (registry_cli.py), on real
folders: the session's trained bundle published under several version names."""

import json
import os
import shutil
import subprocess
import sys
import threading
from datetime import datetime
from itertools import pairwise

import pytest
from typer.testing import CliRunner

from upvote.cli import app
from upvote.model.bundle import ModelNotFoundError
from upvote.model.registry import (
    LOG,
    ChampionChanged,
    RegistryError,
    aliases,
    history,
    list_versions,
    load_model,
    promote,
    publish,
    resolve_version,
    rollback,
)
from upvote.settings import get_settings


@pytest.fixture(scope="module")
def model(trained_dir):
    return load_model(registry_dir=trained_dir / "models")


@pytest.fixture
def models(model):
    """The test's own registry (under its UPVOTE_DATA_DIR) with versions v1, v2, v3 published in
    that order: v1 the champion, v3 the challenger and latest."""
    root = get_settings().models_dir
    for version in ("v1", "v2", "v3"):
        publish(model, version, root)
    return root


def test_publish_makes_the_first_version_champion_and_the_next_ones_challenger(model, tmp_path):
    publish(model, "v1", tmp_path)
    assert aliases(tmp_path) == {"champion": "v1", "latest": "v1"}
    assert os.readlink(tmp_path / "champion") == "v1"  # relative: the folder can move
    [auto] = history(tmp_path)
    assert (auto["action"], auto["version"], auto["previous"]) == ("auto", "v1", None)

    publish(model, "v2", tmp_path)
    assert aliases(tmp_path) == {"champion": "v1", "challenger": "v2", "latest": "v2"}
    assert load_model("champion", tmp_path).version == "v1"
    assert load_model(registry_dir=tmp_path).version == "v2"  # latest, as before
    assert len(history(tmp_path)) == 1  # a challenger is not a change of champion
    assert list_versions(tmp_path) == ["v1", "v2"]
    with pytest.raises(ValueError, match="cannot name a model version"):
        publish(model, "champion", tmp_path)


def test_promote_and_rollback_move_the_champion_and_log_who_when_and_why(models, monkeypatch):
    monkeypatch.setenv("UPVOTE_USER", "alice")
    get_settings.cache_clear()
    event = promote("v2", "better on the new week")
    assert aliases()["champion"] == "v2" and aliases()["challenger"] == "v3"
    assert event["who"] == "alice" and event["reason"] == "better on the new week"
    assert datetime.fromisoformat(event["time"]).utcoffset().total_seconds() == 0
    assert (event["action"], event["version"], event["previous"]) == ("promote", "v2", "v1")

    promote("challenger", "")  # the challenger, decided on: no longer a challenger
    assert aliases() == {"champion": "v3", "latest": "v3"}
    with pytest.raises(RegistryError, match="v3 is already the champion"):
        promote("v3")

    # rollback walks back through the champions (v3 -> v2 -> v1), it does not toggle
    assert rollback("v3 is worse")["version"] == "v2"
    assert rollback("so is v2")["version"] == "v1"
    assert resolve_version("champion").name == "v1"
    with pytest.raises(RegistryError, match="no earlier champion to roll back to"):
        rollback()
    logged = [json.loads(line) for line in (models / LOG).read_text().splitlines()]
    assert [(e["action"], e["version"], e["previous"]) for e in logged] == [
        ("auto", "v1", None),
        ("promote", "v2", "v1"),
        ("promote", "v3", "v2"),
        ("rollback", "v2", "v3"),
        ("rollback", "v1", "v2"),
    ]
    assert {e["who"] for e in logged[1:]} == {"alice"}
    assert [e["version"] for e in history(version="v3")] == ["v3", "v2"]  # as new or previous

    promote("v3")  # after rollbacks, a promotion starts a new branch of history
    assert rollback()["version"] == "v1"


def test_promoting_an_unknown_version_names_the_known_ones(models):
    with pytest.raises(ModelNotFoundError, match=r"unknown model version 'v9'.*v1, v2, v3"):
        promote("v9")
    (models / "half").mkdir()  # a folder that is no bundle cannot become the champion
    with pytest.raises(ModelNotFoundError, match="'half'"):
        promote("half")
    assert aliases()["champion"] == "v1" and len(history()) == 1


def test_a_publish_killed_before_its_rename_leaves_no_visible_version(models):
    shutil.copytree(models / "v3", models / ".staging-v4-12345")  # complete files, not renamed
    assert list_versions() == ["v1", "v2", "v3"]
    with pytest.raises(ModelNotFoundError):
        promote(".staging-v4-12345")


def test_a_registry_older_than_champions_serves_latest_and_rolls_back_to_it(model, tmp_path):
    publish(model, "v1", tmp_path)
    (tmp_path / "champion").unlink()  # as registries made before champions existed
    (tmp_path / LOG).unlink()
    assert resolve_version("champion", tmp_path).name == "v1"  # champion means latest there
    publish(model, "v2", tmp_path)  # no champion link: it becomes the champion, after v1
    assert aliases(tmp_path) == {"champion": "v2", "latest": "v2"}
    assert rollback(registry_dir=tmp_path)["version"] == "v1"


PROMOTER = """
import sys
from upvote.model.registry import promote
for i in range(int(sys.argv[3])):
    promote(sys.argv[1 + i % 2], f"process {sys.argv[1]} round {i}", sys.argv[4])
"""


def test_concurrent_promotions_are_all_logged_in_order_and_the_link_is_never_torn(models):
    """Two processes promote at once (each alternates between its own two versions) while a
    reader resolves the champion: every promotion is logged, each with the champion it replaced
    (they did not interleave), and the link always named a version."""
    publish(load_model("v1", models), "v4", models)
    rounds, seen, errors, stop = 15, set(), [], threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.add(resolve_version("champion", models).name)
            except Exception as error:  # a torn or missing link
                errors.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        promoters = [
            subprocess.Popen([sys.executable, "-c", PROMOTER, a, b, str(rounds), str(models)])
            for a, b in (("v2", "v3"), ("v4", "v1"))
        ]
        assert [p.wait(timeout=120) for p in promoters] == [0, 0]
    finally:
        stop.set()
        reader.join()
    events = history(models)
    assert len(events) == 1 + 2 * rounds
    for before, after in pairwise(events):
        assert after["previous"] == before["version"]
    assert aliases(models)["champion"] == events[-1]["version"]
    assert not errors and seen <= {"v1", "v2", "v3", "v4"} and len(seen) > 1


def test_cli_list_show_promote_rollback(models):
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line for line in listed.output.splitlines()[1:]}
    assert lines["v1"].endswith("champion") and lines["v3"].endswith("challenger, latest")
    spearman = load_model("v1", models).metadata["metrics"]["ours"]["spearman"]
    assert f"{spearman:.3f}" in lines["v2"]

    promoted = runner.invoke(app, ["models", "promote", "v2", "--reason", "A/B test won"])
    assert promoted.exit_code == 0, promoted.output
    assert "champion: v2 (was v1)" in promoted.output
    shown = runner.invoke(app, ["models", "show", "v2"])
    assert shown.exit_code == 0, shown.output
    assert "aliases  champion" in shown.output and "spearman" in shown.output
    assert "promote  v2 (was v1)" in shown.output and "A/B test won" in shown.output

    back = runner.invoke(app, ["models", "rollback", "--reason", "latency"])
    assert back.exit_code == 0 and "champion: v1 (was v2)" in back.output
    assert aliases()["champion"] == "v1"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["promote", "nope"], "Error: unknown model version 'nope' in {root} (known: v1, v2, v3)"),
        (["show", "nope"], "Error: unknown model version 'nope' in {root} (known: v1, v2, v3)"),
        (["promote", "v1"], "Error: model v1 is already the champion"),
        (["rollback"], "Error: no earlier champion to roll back to in {root}/" + LOG
         + " (v1 is the first champion)"),
    ],
)  # fmt: skip
def test_cli_errors_are_one_line_without_a_traceback(models, command, message):
    result = CliRunner().invoke(app, ["models", *command])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [message.format(root=models)]


def test_cli_on_an_empty_registry_says_to_train_first():
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0 and "run `upvote train` first" in listed.output
    promoted = runner.invoke(app, ["models", "promote", "v1"])
    assert promoted.exit_code == 1 and "run `upvote train` first" in promoted.output


def test_promote_replacing_a_champion_that_changed_meanwhile_is_refused(models):
    """`upvote retrain` compared its challenger with v1; someone promoted v2 by hand since."""
    promote("v2", reason="by hand", registry_dir=models)
    events = len(history(models))
    with pytest.raises(ChampionChanged, match="the champion is v2 now, not v1"):
        promote("v3", reason="retrain", registry_dir=models, replacing="v1")
    assert aliases(models)["champion"] == "v2" and len(history(models)) == events
    promote("v3", reason="retrain", registry_dir=models, replacing="v2")
    assert aliases(models)["champion"] == "v3"
