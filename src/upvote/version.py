"""The installed package's version: the ground floor every layer may read."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("upvote")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"
