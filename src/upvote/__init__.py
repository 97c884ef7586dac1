"""upvote: word2vec embeddings and Hacker News upvote prediction from titles."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("upvote")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"


def load_model(version: str = "latest", registry_dir=None):
    """Load a trained upvote model bundle from the registry (``latest`` by default)."""
    from upvote.model.bundle import load_model as _load

    return _load(version, registry_dir=registry_dir)


__all__ = ["__version__", "load_model"]
