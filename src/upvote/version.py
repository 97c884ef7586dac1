"""The installed package's version: the ground floor every layer may read."""

import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("upvote")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"


def code_version() -> str:
    """upvote's version + the git commit of the source tree when there is one."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__
