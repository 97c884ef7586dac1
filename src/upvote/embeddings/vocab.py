"""Vocabulary: word counts, ids by frequency, sub-sampling and the noise distribution of word2vec.

Ids follow count-descending order (ties in gensim's order), so id 0 is the most frequent word and
"the 30,000 most frequent words" is simply ids < 30,000.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PRUNE_AT = 20_000_000  # distinct words held while counting (~2 GB) before the rarest are pruned


def count_words(documents: Iterable[list[str]], prune_at: int = PRUNE_AT) -> Counter[str]:
    """Count words in bounded memory, as word2vec.c's ReduceVocab does.

    Whenever more than `prune_at` distinct words are held, words seen at most `floor` times are
    dropped and `floor` rises by one. Counts of pruned words are lost, so on corpora that large
    the rarest words' counts are approximate; with min_count above the final floor, the kept
    vocabulary is the same as exact counting would give in practice.
    """
    counter: Counter[str] = Counter()
    floor = 1
    for tokens in documents:
        counter.update(tokens)
        if len(counter) > prune_at:
            counter = Counter({word: n for word, n in counter.items() if n > floor})
            floor += 1
    return counter


class EmptyVocabularyError(ValueError):
    """No word survived min_count / max_vocab: there is nothing to train."""


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
        kept = [(word, n) for word, n in counter.items() if n >= min_count]
        # count descending, ties last-seen first: exactly gensim's order (np.lexsort of
        # (-first_seen, -count)), so "the 30k most frequent words" are the same words in both
        kept = [kept[i] for i in sorted(range(len(kept)), key=lambda i: (-kept[i][1], -i))]
        if max_vocab is not None:
            kept = kept[:max_vocab]
        if not kept:
            seen = len(counter)
            raise EmptyVocabularyError(
                f"vocabulary is empty: none of the {seen:,} distinct words occurs at least "
                f"min_count={min_count} times (lower --min-count or give a larger corpus)"
            )
        return cls([w for w, _ in kept], np.array([n for _, n in kept], dtype=np.int64))

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
