"""Word2vec embeddings: our own engine (CPU numba kernels, PyTorch for CUDA), gensim-style API.

from upvote.embeddings import train
vectors = train(sentences, vector_size=100, sg=True, epochs=5)
vectors.most_similar("king")

`train` is imported on first use: the numba engine costs ~60 MB and a second of start-up that the
data and serving commands do not need.
"""

from typing import Any

from upvote.embeddings.params import Word2VecParams
from upvote.embeddings.vectors import KeyedVectors

__all__ = ["KeyedVectors", "Word2VecParams", "train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from upvote.embeddings.word2vec import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
