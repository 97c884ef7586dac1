"""KeyedVectors: word -> vector lookups, neighbours, analogies, and the word2vec file formats.

The API mirrors gensim's KeyedVectors so code written for gensim works unchanged, and the text and
binary files are the word2vec.c formats that gensim.models.KeyedVectors.load_word2vec_format reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

WRITE_BLOCK_ROWS = 8192  # rows formatted at a time when writing the word2vec formats


def _text_lines(keys: list[bytes], rows: np.ndarray) -> memoryview:
    """One text line per row: the key, then the values ("%.9g"), separated by spaces."""
    from upvote.embeddings.float_text import MAX_VALUE_BYTES, format_rows  # numba: on use only

    offsets = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum([len(key) for key in keys], out=offsets[1:])
    out = np.empty(offsets[-1] + rows.size * (MAX_VALUE_BYTES + 1) + len(keys), dtype=np.uint8)
    n = format_rows(np.frombuffer(b"".join(keys), dtype=np.uint8), offsets, rows, out)
    return memoryview(out[:n])


def _binary_lines(keys: list[bytes], rows: np.ndarray) -> bytes:
    """Per row: the key, a space, the values as little-endian float32 bytes, a newline."""
    raw = memoryview(rows.astype("<f4").tobytes())
    step = 4 * rows.shape[1]
    return b"".join(
        b"%s %s\n" % (key, raw[i * step : (i + 1) * step]) for i, key in enumerate(keys)
    )


class KeyedVectors:
    def __init__(
        self, keys: Sequence[str], vectors: np.ndarray, counts: np.ndarray | None = None
    ) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(keys):
            raise ValueError(f"{len(keys)} keys but vectors of shape {vectors.shape}")
        self.index_to_key = list(keys)
        self.key_to_index = {key: i for i, key in enumerate(self.index_to_key)}
        self.vectors = vectors
        self.counts = (
            np.zeros(len(keys), dtype=np.int64)
            if counts is None
            else np.asarray(counts, dtype=np.int64)
        )
        self._normed: np.ndarray | None = None

    @property
    def vector_size(self) -> int:
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return len(self.index_to_key)

    def __contains__(self, key: str) -> bool:
        return key in self.key_to_index

    def __getitem__(self, key: str) -> np.ndarray:
        return self.vectors[self._index(key)]

    def _index(self, key: str) -> int:
        try:
            return self.key_to_index[key]
        except KeyError:
            raise KeyError(f"word {key!r} not in vocabulary") from None

    @property
    def normed(self) -> np.ndarray:
        """Unit-length rows (cached): cosine similarity becomes a dot product."""
        if self._normed is None:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._normed = self.vectors / np.maximum(norms, 1e-12)
        return self._normed

    def similarity(self, a: str, b: str) -> float:
        return float(self.normed[self._index(a)] @ self.normed[self._index(b)])

    def most_similar(
        self,
        positive: str | Sequence[str] = (),
        negative: str | Sequence[str] = (),
        topn: int = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]]:
        """Nearest words by cosine to mean(positive) - mean(negative) of the unit vectors
        (3CosAdd, as gensim); the query words themselves are excluded."""
        positive = [positive] if isinstance(positive, str) else list(positive)
        negative = [negative] if isinstance(negative, str) else list(negative)
        if not positive and not negative:
            raise ValueError("most_similar needs at least one positive or negative word")
        ids = [self._index(w) for w in positive + negative]
        weights = np.array([1.0] * len(positive) + [-1.0] * len(negative), dtype=np.float32)
        query = weights @ self.normed[ids]
        query /= max(float(np.linalg.norm(query)), 1e-12)
        candidates = self.normed[:restrict_vocab] if restrict_vocab else self.normed
        scores = candidates @ query
        return self._top(scores, set(ids), topn)

    def most_similar_cosmul(
        self,
        positive: Sequence[str] = (),
        negative: Sequence[str] = (),
        topn: int = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]]:
        """3CosMul (Levy & Goldberg 2014): prod cos(w, p) / (prod cos(w, n) + eps), with cosines
        shifted to [0, 1]; less dominated by one large similarity than 3CosAdd."""
        positive, negative = list(positive), list(negative)
        ids = [self._index(w) for w in positive + negative]
        candidates = self.normed[:restrict_vocab] if restrict_vocab else self.normed
        pos = [(1 + candidates @ self.normed[self._index(w)]) / 2 for w in positive]
        neg = [(1 + candidates @ self.normed[self._index(w)]) / 2 for w in negative]
        scores = np.prod(pos, axis=0) / (np.prod(neg, axis=0) + 1e-6)
        return self._top(scores, set(ids), topn)

    def _top(self, scores: np.ndarray, exclude: set[int], topn: int) -> list[tuple[str, float]]:
        k = min(topn + len(exclude), len(scores))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best], kind="stable")]
        hits = [(self.index_to_key[i], float(scores[i])) for i in best if i not in exclude]
        return hits[:topn]

    # --- word2vec.c formats (gensim reads them unchanged) ---

    def save_word2vec_format(self, path: str | Path, binary: bool = False) -> None:
        """Header "V D", then one word per line followed by its vectors: as text ("%.9g", exact
        float32 round trip) or as raw little-endian float32 bytes (binary). Written in blocks of
        WRITE_BLOCK_ROWS rows, the text formatted by a numba kernel (float_text.py)."""
        with open(path, "wb") as f:
            f.write(f"{len(self)} {self.vector_size}\n".encode())
            for start in range(0, len(self), WRITE_BLOCK_ROWS):
                keys = [key.encode() for key in self.index_to_key[start : start + WRITE_BLOCK_ROWS]]
                rows = self.vectors[start : start + WRITE_BLOCK_ROWS]
                f.write(_binary_lines(keys, rows) if binary else _text_lines(keys, rows))

    @classmethod
    def load_word2vec_format(cls, path: str | Path, binary: bool = False) -> KeyedVectors:
        with open(path, "rb") as f:
            header = f.readline().split()
            if len(header) != 2:
                raise ValueError(f"{path}: not a word2vec file (first line must be 'V D')")
            n, dim = int(header[0]), int(header[1])
            keys: list[str] = []
            vectors = np.empty((n, dim), dtype=np.float32)
            for i in range(n):
                if binary:
                    word = bytearray()
                    while (ch := f.read(1)) != b" ":
                        if not ch:
                            raise ValueError(f"{path}: file ends after {i} of {n} vectors")
                        word += ch
                    keys.append(word.decode().lstrip("\n"))
                    vectors[i] = np.frombuffer(f.read(4 * dim), dtype="<f4")
                else:
                    parts = f.readline().decode().rstrip("\n").split(" ")
                    if len(parts) != dim + 1:
                        raise ValueError(
                            f"{path}: line {i + 2} has {len(parts) - 1} values, not {dim}"
                        )
                    keys.append(parts[0])
                    vectors[i] = np.array(parts[1:], dtype=np.float32)
        return cls(keys, vectors)

    # --- native format: one .npz, loads much faster than text ---

    def save(self, path: str | Path) -> None:
        with open(path, "wb") as f:  # an open file: np.savez would otherwise append ".npz"
            np.savez(f, vectors=self.vectors, keys=np.array(self.index_to_key), counts=self.counts)

    @classmethod
    def load(cls, path: str | Path) -> KeyedVectors:
        with np.load(path) as data:
            return cls(data["keys"].tolist(), data["vectors"], data["counts"])
