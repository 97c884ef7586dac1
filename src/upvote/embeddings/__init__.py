"""Word2vec embeddings: our own engine (CPU numba kernels, PyTorch for CUDA), gensim-style API.

from upvote.embeddings import train
vectors = train(sentences, vector_size=100, sg=True, epochs=5)
vectors.most_similar("king")
"""

from upvote.embeddings.params import Word2VecParams
from upvote.embeddings.train import train
from upvote.embeddings.vectors import KeyedVectors

__all__ = ["KeyedVectors", "Word2VecParams", "train"]
