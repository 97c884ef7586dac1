"""Tokenizers: a SentencePiece unigram model for HN titles, and the text8-style word splitter.

SentencePiece learns sub-word pieces from the titles themselves, so rare words and new product names
("Kubernetes", "LLaMA") still map onto known pieces instead of becoming unknown tokens. The
``WordTokenizer`` reproduces text8's normalisation for the Wikipedia corpus.
"""

from typing import Any

from upvote.tokenizer.word import WordTokenizer

__all__ = ["SentencePieceTokenizer", "WordTokenizer"]


def __getattr__(name: str) -> Any:
    """SentencePiece is imported on first use: word-tokenized corpora (the GPU benchmark's
    minimal environment) do not need it."""
    if name == "SentencePieceTokenizer":
        from upvote.tokenizer.sentencepiece import SentencePieceTokenizer

        return SentencePieceTokenizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
