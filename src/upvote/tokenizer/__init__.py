"""Tokenizers: a SentencePiece unigram model for HN titles, and the text8-style word splitter.

SentencePiece learns sub-word pieces from the titles themselves, so rare words and new product names
("Kubernetes", "LLaMA") still map onto known pieces instead of becoming unknown tokens. The
``WordTokenizer`` reproduces text8's normalisation for the Wikipedia corpus.
"""

from upvote.tokenizer.sentencepiece import SentencePieceTokenizer
from upvote.tokenizer.word import WordTokenizer

__all__ = ["SentencePieceTokenizer", "WordTokenizer"]
