"""What the tokenizer and word2vec read when `upvote train` builds a model: the titles it may
see (none from the validation or test period), any comments, then any extra text files."""

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from upvote.embeddings.corpus import iter_documents
from upvote.model.splits import Data
from upvote.tokenizer.sentencepiece import SentencePieceTokenizer


def corpus_titles(stories: pd.DataFrame, data: Data, only_train: bool = False) -> list[str]:
    """Titles word2vec and the tokenizer may read: dated before the validation split (only the
    training rows' with ``only_train``: a ``max_rows`` run's small budget)."""
    if only_train:
        return data.train["title"].dropna().tolist()
    older = stories["time"] < data.valid["time"].min()
    if data.train["time"].isna().any():  # undated training rows (a pulled file without times)
        older |= stories.index.isin(data.train.index)
    return stories.loc[older, "title"].dropna().tolist()


class TextFileCorpus:
    """A text file (plain or gzip, told apart by content) as word2vec sentences of SentencePiece
    pieces, re-iterable. The embeddings' reader cuts a text8-style single line into bounded
    pseudo-documents (embeddings/corpus.py), so memory stays flat whatever the file."""

    def __init__(self, path: str | Path, tokenizer: SentencePieceTokenizer):
        self.path, self.tokenizer = Path(path), tokenizer

    def __iter__(self) -> Iterator[list[str]]:
        for document in iter_documents(self.path):
            yield self.tokenizer.tokenize(document)


class Corpus:
    """Titles (+ comments) as pieces, then any extra files: what word2vec reads."""

    def __init__(self, texts: list[str], tokenizer: SentencePieceTokenizer, files: list[str]):
        self.sentences = tokenizer.tokenize_batch(texts)
        self.files = [TextFileCorpus(p, tokenizer) for p in files]

    def __iter__(self) -> Iterator[list[str]]:
        yield from self.sentences
        for corpus in self.files:
            yield from corpus
