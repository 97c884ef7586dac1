"""Vocabulary: word counts, ids by frequency, sub-sampling and the noise distribution of word2vec.

Ids follow count-descending order (ties in gensim's order), so id 0 is the most frequent word and
"the 30,000 most frequent words" is simply ids < 30,000.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# distinct words held while counting (~1 GB in encoding's word table) before the rarest are
# pruned, as word2vec.c's ReduceVocab: see encode_kernels.maybe_prune
PRUNE_AT = 20_000_000


def frequency_order(counts: np.ndarray, min_count: int, max_vocab: int | None) -> np.ndarray:
    """Indices of the words to keep, in vocabulary order, given counts in first-seen order.

    Words seen >= min_count times, count descending, ties last-seen first: exactly gensim's
    order (np.lexsort of (-first_seen, -count)), so "the 30k most frequent words" are the same
    words in both; then at most max_vocab of them.
    """
    kept = np.flatnonzero(counts >= min_count)
    order = kept[np.lexsort((-kept, -counts[kept]))]
    return order if max_vocab is None else order[:max_vocab]


class EmptyVocabularyError(ValueError):
    """No word survived min_count / max_vocab: there is nothing to train."""

    @classmethod
    def of(cls, distinct: int, min_count: int) -> EmptyVocabularyError:
        return cls(
            f"vocabulary is empty: none of the {distinct:,} distinct words occurs at least "
            f"min_count={min_count} times (lower --min-count or give a larger corpus)"
        )


@dataclass
class Vocab:
    words: list[str]
    counts: np.ndarray  # int64 [V], count-descending

    def __post_init__(self) -> None:
        self.index = {word: i for i, word in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @classmethod
    def from_counter(
        cls, counter: Counter[str], min_count: int = 5, max_vocab: int | None = None
    ) -> Vocab:
        """Keep words seen >= min_count times, at most max_vocab of them (the most frequent)."""
        words = list(counter)
        counts = np.fromiter(counter.values(), dtype=np.int64, count=len(words))
        return cls.from_counts(words, counts, min_count, max_vocab)

    @classmethod
    def from_counts(
        cls, words: list[str], counts: np.ndarray, min_count: int = 5, max_vocab: int | None = None
    ) -> Vocab:
        """from_counter for words in first-seen order and their counts (int64 array)."""
        order = frequency_order(counts, min_count, max_vocab)
        if not len(order):
            raise EmptyVocabularyError.of(len(words), min_count)
        return cls([words[i] for i in order.tolist()], counts[order])

    def keep_probability(self, sample: float) -> np.ndarray:
        """word2vec.c's sub-sampling: keep a word of count f with p = (sqrt(f/t) + 1) * t / f.

        t = sample * (total count of the vocabulary). Frequent words ("the") are mostly dropped,
        which speeds training and improves the vectors of rarer words.
        """
        if sample <= 0:
            return np.ones(len(self), dtype=np.float32)
        threshold = sample * self.total
        f = self.counts.astype(np.float64)
        p = (np.sqrt(f / threshold) + 1.0) * threshold / f
        return np.minimum(p, 1.0).astype(np.float32)

    def noise_table(self, exponent: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
        """Walker's alias table of the noise distribution unigram**exponent: (prob, alias).

        A noise word is one uniform column i, kept if a uniform u < prob[i], else alias[i]: O(1)
        per draw. gensim's bisection over a cumulative table spends much of skip-gram's time in
        mispredicted branches, and word2vec.c's 1e8-entry table takes 400 MB.
        """
        weights = self.counts.astype(np.float64) ** exponent
        n = len(weights)
        scaled = weights * n / weights.sum()
        prob = np.ones(n, dtype=np.float64)
        alias = np.arange(n, dtype=np.int32)
        small = [i for i in range(n) if scaled[i] < 1.0]
        large = [i for i in range(n) if scaled[i] >= 1.0]
        while small and large:  # Vose's method: top up each small column from a large one
            s, g = small.pop(), large.pop()
            prob[s], alias[s] = scaled[s], g
            scaled[g] -= 1.0 - scaled[s]
            (small if scaled[g] < 1.0 else large).append(g)
        return prob.astype(np.float32), alias

    def save(self, path: Path) -> None:
        """vocab.tsv: word<TAB>count per line, in id order."""
        with open(path, "w", encoding="utf-8") as f:
            for word, n in zip(self.words, self.counts.tolist(), strict=True):
                f.write(f"{word}\t{n}\n")

    @classmethod
    def load(cls, path: Path) -> Vocab:
        words, counts = [], []
        with open(path, encoding="utf-8") as f:
            for line in f:
                word, n = line.rstrip("\n").rsplit("\t", 1)
                words.append(word)
                counts.append(int(n))
        return cls(words, np.array(counts, dtype=np.int64))
