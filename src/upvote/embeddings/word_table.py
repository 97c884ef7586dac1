"""The word table of corpus encoding (a numba hash table of token bytes) and the shard writer.

WordTable owns the arrays the kernels of encode_kernels.py work on, grows them between calls and
turns counts into a vocabulary. ShardWriter cuts the id stream into the shards of the encoded
corpus (layout: corpus.py's docstring).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from upvote.embeddings import encode_kernels as kernels
from upvote.embeddings.vocab import PRUNE_AT, EmptyVocabularyError, Vocab, frequency_order

NO_DOC_ENDS = np.empty(0, dtype=np.int64)  # line mode: documents are lines


def tokens_of(strings: list[str], doc_lengths: list[int]) -> Tokens:
    """Tokens of Python strings (each one token), in documents of doc_lengths strings."""
    encoded = [string.encode() for string in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    return hashed(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets, doc_lengths)


def hashed(data: np.ndarray, offsets: np.ndarray, doc_lengths) -> Tokens:
    """Tokens of data cut at offsets, their hashes computed."""
    hashes = np.empty(len(offsets) - 1, dtype=np.uint64)
    kernels.hash_tokens(data, offsets, hashes)
    return Tokens(data, offsets, hashes, np.asarray(doc_lengths, dtype=np.int64))


def _grown(array: np.ndarray, size: int, used: int) -> np.ndarray:
    """array with room for `size` entries (doubling), its first `used` kept."""
    if len(array) >= size:
        return array
    grown = np.empty(max(size, 2 * len(array)), dtype=array.dtype)
    grown[:used] = array[:used]
    return grown


class Tokens(NamedTuple):
    """Tokens back to back: token j is data[offsets[j]:offsets[j + 1]], document i the next
    doc_lengths[i] of them; tokens after the last document belong to one still open."""

    data: np.ndarray  # uint8
    offsets: np.ndarray  # int64, one more than there are tokens
    hashes: np.ndarray  # uint64, of each token's bytes (encode_kernels.hash_tokens)
    doc_lengths: np.ndarray  # int64


class Splitter:
    """UTF-8 bytes -> Tokens, by the kernel split_text: text8 normalisation (word_mode, the
    WordTokenizer) or str.split(). A text file's lines are cut every pseudo_words words; the
    count of the line still open is carried from one chunk to the next.

    The arrays of a Tokens are reused `keep` splits later (fresh ones per call cost a page fault
    per 4 kB, a third of the splitting time): another thread may hold the last keep - 1.
    """

    def __init__(self, word_mode: bool, pseudo_words: int = 0, keep: int = 1) -> None:
        self.word_mode = word_mode
        self.pseudo_words = pseudo_words
        self.state = np.zeros(1, dtype=np.int64)
        self.buffers = [
            (
                np.empty(0, np.uint8),
                np.empty(0, np.int64),
                np.empty(0, np.uint64),
                np.empty(0, np.int64),
            )
            for _ in range(keep)
        ]
        self.calls = 0

    def split(
        self, data: np.ndarray, doc_ends: np.ndarray | None = None, final: bool = False
    ) -> Tokens:
        """Lines (doc_ends None; final closes the last one) or documents ending at the byte
        offsets doc_ends."""
        n = len(data)
        ends = NO_DOC_ENDS if doc_ends is None else doc_ends
        slot = self.calls % len(self.buffers)
        self.calls += 1
        tokens, offsets, hashes, doc_lengths = self.buffers[slot]
        tokens = _grown(tokens, 5 * n + 8, 0)  # "1" -> "one": up to 5 bytes a byte
        offsets = _grown(offsets, n + 2, 0)
        hashes = _grown(hashes, n + 1, 0)
        doc_lengths = _grown(doc_lengths, n + len(ends) + 2, 0)
        self.buffers[slot] = tokens, offsets, hashes, doc_lengths
        n_tokens, n_docs = kernels.split_text(
            data, ends, doc_ends is None, self.word_mode, self.pseudo_words, final, self.state,
            tokens, offsets, hashes, doc_lengths,
        )  # fmt: skip
        return Tokens(
            tokens[: offsets[n_tokens]], offsets[: n_tokens + 1], hashes[:n_tokens],
            doc_lengths[:n_docs],
        )  # fmt: skip


class WordTable:
    """Token bytes -> provisional id (first-seen order) and count, pruned like word2vec.c.

    ``frozen`` tables hold a fixed vocabulary (pid = word id) and are only looked up.
    The id arrays returned by ``add`` are views of a reused buffer: consume them (write, copy)
    before the next call.
    """

    def __init__(self, prune_at: int = PRUNE_AT) -> None:
        self.sizes = np.zeros(5, dtype=np.int64)
        self.sizes[kernels.PRUNE_AT] = prune_at
        self.sizes[kernels.FLOOR] = 1
        self.slots = np.full(1 << 12, -1, dtype=np.int32)
        self.hashes = np.empty(1 << 10, dtype=np.uint64)
        self.offsets = np.zeros((1 << 10) + 1, dtype=np.int64)
        self.counts = np.zeros(1 << 10, dtype=np.int64)
        self.pool = np.empty(1 << 14, dtype=np.uint8)
        self.out = np.empty(0, dtype=np.int32)

    @classmethod
    def frozen(cls, words: list[str]) -> WordTable:
        """A lookup-only table of `words`, each word's pid its index."""
        table = cls(prune_at=len(words) + 1)
        table.add(tokens_of(words, [len(words)]))
        if table.n_words != len(words):
            raise ValueError("the vocabulary holds a word twice")
        table.sizes[kernels.FROZEN] = 1
        return table

    @property
    def n_words(self) -> int:
        return int(self.sizes[kernels.N_WORDS])

    @property
    def pruned(self) -> bool:
        """Whether rare words were dropped: pids given before a pruning mean other words since."""
        return bool(self.sizes[kernels.PRUNED])

    def _reserve(self, new_words: int, new_bytes: int, out_size: int) -> None:
        """Room for `new_words` more words of `new_bytes` bytes in all and an output buffer of
        out_size ids (the kernel grows the slots)."""
        n = self.n_words
        words = n + new_words
        self.hashes = _grown(self.hashes, words, n)
        self.counts = _grown(self.counts, words, n)
        self.offsets = _grown(self.offsets, words + 1, n + 1)
        used = int(self.offsets[n])
        self.pool = _grown(self.pool, used + new_bytes, used)
        self.out = _grown(self.out, out_size, 0)

    def add(self, tokens: Tokens) -> np.ndarray:
        """The pids of the tokens, -1 after each document (kernels.scan_tokens)."""
        n_tokens = len(tokens.offsets) - 1
        # at most one new word a token, its bytes among the tokens'
        self._reserve(n_tokens, len(tokens.data), n_tokens + len(tokens.doc_lengths))
        k, self.slots = kernels.scan_tokens(
            tokens.data, tokens.offsets, tokens.hashes, tokens.doc_lengths, self.slots,
            self.hashes, self.offsets, self.pool, self.counts, self.sizes, self.out,
        )  # fmt: skip
        return self.out[:k]

    def words(self, pids: np.ndarray) -> list[str]:
        """The words of these pids, decoded (a replacement character for invalid UTF-8)."""
        pool, offsets = self.pool[: self.offsets[self.n_words]].tobytes(), self.offsets
        return [pool[offsets[p] : offsets[p + 1]].decode(errors="replace") for p in pids.tolist()]

    def vocab(self, min_count: int, max_vocab: int | None) -> tuple[Vocab, np.ndarray]:
        """The vocabulary (Vocab.from_counter's rules) and remap, pid -> word id or
        kernels.UNKNOWN, with one more entry, -1, at its end: remap[ids] keeps separators."""
        counts = self.counts[: self.n_words]
        order = frequency_order(counts, min_count, max_vocab)
        if not len(order):
            raise EmptyVocabularyError.of(self.n_words, min_count)
        vocab = Vocab(self.words(order), counts[order].copy())
        remap = np.full(self.n_words + 1, kernels.UNKNOWN, dtype=np.int32)
        remap[order] = np.arange(len(order), dtype=np.int32)
        remap[-1] = kernels.SEPARATOR  # index -1 is the last entry: separators map to themselves
        return vocab, remap


class ShardWriter:
    """Writes an id stream as shards: out-of-vocabulary ids and empty documents dropped, whole
    documents per shard, at most shard_tokens ids each unless one document is longer."""

    def __init__(self, directory: Path, shard_tokens: int) -> None:
        self.directory = directory
        self.capacity = shard_tokens
        self.buffer = np.empty(shard_tokens, dtype=np.int32)  # pages are touched as it fills
        self.filled = 0
        self.tail = np.empty(0, dtype=np.int32)  # an unfinished document from the last call
        self.after_separator = True  # the stream so far ends with a document (or is empty)
        self.n_shards = self.n_tokens = self.n_documents = 0

    def add(self, ids: np.ndarray) -> None:
        """More of the stream: ids >= 0, -1 after each document, kernels.UNKNOWN to drop."""
        ids = ids[ids != kernels.UNKNOWN]
        separator = ids == kernels.SEPARATOR
        previous = np.empty_like(separator)
        previous[:1] = self.after_separator
        previous[1:] = separator[:-1]
        ids = ids[~(separator & previous)]  # a document with no token left: dropped
        if not len(ids):
            return
        self.after_separator = bool(ids[-1] == kernels.SEPARATOR)
        if len(self.tail):
            ids = np.concatenate([self.tail, ids])
        doc_ends = np.flatnonzero(ids == kernels.SEPARATOR) + 1
        complete = int(doc_ends[-1]) if len(doc_ends) else 0
        self.tail = ids[complete:].copy()
        self.n_documents += len(doc_ends)
        self.n_tokens += complete - len(doc_ends)
        cuts, filled = kernels.shard_cuts(doc_ends, self.filled, self.capacity)
        start = 0
        for cut in cuts.tolist():
            self._write(ids[start:cut])
            start = cut
        self._append(ids[start:complete])
        assert self.filled == filled

    def _append(self, ids: np.ndarray) -> None:
        self.buffer[self.filled : self.filled + len(ids)] = ids
        self.filled += len(ids)

    def _write(self, ids: np.ndarray) -> None:
        """A shard: what waits in the buffer, then ids (a document longer than a shard alone)."""
        if self.filled:
            self._append(ids)
            ids = self.buffer[: self.filled]
        np.save(self.directory / f"{self.n_shards:05d}.npy", ids)
        self.n_shards += 1
        self.filled = 0

    def close(self) -> None:
        if len(self.tail):
            raise AssertionError("the id stream ended inside a document")
        if self.filled:
            self._write(self.buffer[:0])
