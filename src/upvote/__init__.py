"""upvote: word2vec embeddings and Hacker News upvote prediction from titles."""

from upvote.version import __version__


def load_model(version: str = "latest", registry_dir=None):
    """Load a trained upvote model bundle from the registry (``latest`` by default).

    The users' front door (``upvote.load_model()``); code inside the package imports
    ``upvote.model.registry`` itself."""
    from upvote.model.registry import load_model as _load

    return _load(version, registry_dir=registry_dir)


__all__ = ["__version__", "load_model"]
