import subprocess
import sys

from typer.testing import CliRunner

from upvote import __version__
from upvote.cli import app


def test_version_flag_prints_package_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == __version__


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "upvote", "--help"], capture_output=True, text=True, check=True
    )
    for group in ("data", "tokenizer", "embed", "train", "evaluate", "predict", "serve"):
        assert group in out.stdout
