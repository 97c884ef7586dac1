"""Corpus encoding: documents -> vocabulary + id shards, without Python work per token.

Pass 1 reads the corpus once: the kernels (encode_kernels.py) split it into tokens, give each new
word a provisional id (pid) in first-seen order, count it, and the pid stream goes to a spool
file next to the shards. The vocabulary is then built from the counts (Vocab's exact order and
min_count / max_vocab rules), and pass 2 maps the spooled pids to word ids with one numpy gather
per block: the corpus is read and tokenised only once.

Only when the word table had to be pruned (more than PRUNE_AT distinct words, word2vec.c's
ReduceVocab, checked after each document as the Python Counter was) do spooled pids stop naming
the same words; the corpus is then read a second time against the final vocabulary. Either way
the shards are those that counting with a Counter and encoding document by document gave.

Memory stays bounded: the word table (pruned), one read chunk (READ_CHUNK_BYTES) or batch of
documents, and one shard being filled.
"""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from upvote.embeddings.encode_kernels import first_invalid_utf8
from upvote.embeddings.vocab import PRUNE_AT, Vocab
from upvote.embeddings.word_table import ShardWriter, Splitter, Tokens, WordTable, hashed
from upvote.prefetch import prefetch
from upvote.tokenizer.word import WordTokenizer

SPOOL_BLOCK = 1 << 22  # pids read back from the spool at a time (16 MB)
PREFETCH = 2  # chunks or batches read ahead by the reader thread

Scan = Callable[[WordTable], Iterator[np.ndarray]]


class CorpusError(ValueError):
    """The corpus cannot be read or holds no usable text."""


def _owner(tokenize):
    """The tokenizer object behind `tokenize` (itself, or the object of a bound method)."""
    return tokenize.__self__ if inspect.ismethod(tokenize) else tokenize


def fast_mode(tokenize) -> str | None:
    """ "space" (no tokenizer: str.split()) or "word" (a WordTokenizer, or its tokenize method):
    the kernels tokenise those themselves. None for any other tokenizer."""
    if tokenize is None:
        return "space"
    return "word" if isinstance(_owner(tokenize), WordTokenizer) else None


def _batch_tokenizer(tokenize) -> Callable[[list[str]], list[list[str]]]:
    """Strings -> token lists, many at once where the tokenizer can (SentencePiece's
    tokenize_batch runs in C++ threads), else one call per document."""
    owner = _owner(tokenize)
    if hasattr(owner, "tokenize_batch"):
        return owner.tokenize_batch
    call = owner.tokenize if hasattr(owner, "tokenize") and not callable(owner) else tokenize
    return lambda texts: [call(text) for text in texts]


def _offsets(array: pa.Array) -> np.ndarray:
    """The int64 offsets of a large_string array's values (len + 1 of them)."""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)
    return offsets[array.offset : array.offset + len(array) + 1]


def _values(array: pa.Array) -> np.ndarray:
    data = array.buffers()[2]
    return np.empty(0, dtype=np.uint8) if data is None else np.frombuffer(data, dtype=np.uint8)


def scan_lines(
    chunks: Iterable[bytes], word_mode: bool, pseudo_words: int, table: WordTable
) -> Iterator[np.ndarray]:
    """Ids of a text file read as byte chunks, each cut after ASCII whitespace (line mode).
    Reading and splitting run in the prefetch thread, the table lookups here."""
    splitter = Splitter(word_mode, pseudo_words, keep=PREFETCH + 2)

    def split() -> Iterator[Tokens]:
        for chunk in chunks:
            yield splitter.split(_valid(chunk, splitter.word_mode))
        yield splitter.split(np.empty(0, dtype=np.uint8), final=True)

    for tokens in prefetch(split(), PREFETCH, "corpus-reader"):
        yield table.add(tokens)


def _valid(chunk: bytes, word_mode: bool) -> np.ndarray:
    """chunk as the bytes of what Python reads with errors="replace": a token of the plain split
    keeps its bytes, so invalid UTF-8 becomes U+FFFD as before (the word tokenizer never keeps a
    non-ASCII byte, so its chunks are not checked)."""
    data = np.frombuffer(chunk, dtype=np.uint8)
    if not word_mode and first_invalid_utf8(data) >= 0:
        data = np.frombuffer(bytes(chunk).decode(errors="replace").encode(), dtype=np.uint8)
    return data


def scan_batches(batches: Iterable, tokenize, table: WordTable) -> Iterator[np.ndarray]:
    """Ids of batches of documents: lists of strings or token lists, or Arrow string arrays.
    Converting and splitting run in the prefetch thread, the table lookups here."""
    for tokens in prefetch(_split_batches(batches, tokenize), PREFETCH, "corpus-reader"):
        yield table.add(tokens)


def _split_batches(batches: Iterable, tokenize) -> Iterator[Tokens]:
    mode = fast_mode(tokenize)
    splitter = Splitter(mode == "word", keep=PREFETCH + 2) if mode else None
    split = None if mode else _batch_tokenizer(tokenize)
    for batch in batches:
        if isinstance(batch, pa.Array):
            if splitter is not None:
                yield _split_strings(batch, splitter)
                continue
            batch = batch.to_pylist()
        if splitter is not None and all(isinstance(doc, str) for doc in batch):
            yield _split_strings(pa.array(batch, type=pa.large_string()), splitter)
            continue
        if split is None:  # token lists among the strings: split the strings in Python
            split = _batch_tokenizer(WordTokenizer() if mode == "word" else str.split)
        texts = [doc for doc in batch if isinstance(doc, str)]
        split_texts = iter(split(texts) if texts else [])
        lists = [next(split_texts) if isinstance(doc, str) else list(doc) for doc in batch]
        yield _token_lists(pa.array(lists, type=pa.list_(pa.large_string())))


def _split_strings(texts: pa.Array, splitter: Splitter) -> Tokens:
    texts = texts.cast(pa.large_string())
    offsets = _offsets(texts)
    data = _values(texts)[offsets[0] : offsets[-1]]
    if not splitter.word_mode and first_invalid_utf8(data) >= 0:  # in a Parquet file
        raw = texts.cast(pa.large_binary()).to_pylist()  # read as text files are: U+FFFD
        return _split_strings(pa.array([t.decode(errors="replace") for t in raw]), splitter)
    return splitter.split(data, doc_ends=offsets[1:] - offsets[0])


def _token_lists(lists: pa.Array) -> Tokens:
    doc_bounds = np.frombuffer(lists.buffers()[1], dtype=np.int32)
    doc_bounds = doc_bounds[lists.offset : lists.offset + len(lists) + 1]
    offsets = _offsets(lists.values)[doc_bounds[0] : doc_bounds[-1] + 1]
    return hashed(_values(lists.values), offsets, np.diff(doc_bounds))


def encode_ids(
    scan: Scan,
    out_dir: Path,
    *,
    vocab: Vocab | None,
    min_count: int,
    max_vocab: int | None,
    shard_tokens: int,
    prune_at: int = PRUNE_AT,
) -> tuple[Vocab, ShardWriter]:
    """Count (unless vocab is given) and encode what scan(table) yields into out_dir/shards."""
    shard_dir = out_dir / "shards"
    writer = ShardWriter(shard_dir, shard_tokens)
    if vocab is None:
        table = WordTable(prune_at)
        with tempfile.TemporaryFile(dir=out_dir, prefix="pids-") as spool:
            for ids in scan(table):
                if not table.pruned:  # after a pruning the spool is useless: stop writing it
                    ids.tofile(spool)
            if table.n_words == 0:
                raise CorpusError("the corpus is empty: no tokens found")
            vocab, remap = table.vocab(min_count, max_vocab)
            if not table.pruned:
                spool.seek(0)
                while len(pids := np.fromfile(spool, dtype=np.int32, count=SPOOL_BLOCK)):
                    writer.add(remap[pids])
                writer.close()
                return vocab, writer
    frozen = WordTable.frozen(vocab.words)
    for ids in scan(frozen):
        writer.add(ids)
    writer.close()
    return vocab, writer
