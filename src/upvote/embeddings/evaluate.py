"""Intrinsic evaluation: word analogies (questions-words format) and word similarity (Spearman).

Both follow gensim's evaluate_word_analogies / evaluate_word_pairs, so numbers are comparable:
case-insensitive, questions with a word outside the vocabulary are skipped and reported as
coverage, analogies search only the `restrict_vocab` most frequent words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from upvote.embeddings.vectors import KeyedVectors

BATCH = 512
# The standard sets shipped in the package (eval_sets/ATTRIBUTION.md): name -> (file, kind)
EVAL_SETS = Path(__file__).parent / "eval_sets"
STANDARD_SETS = {
    "analogy": ("questions-words.txt", "analogy"),
    "wordsim353": ("wordsim353.tsv", "similarity"),
    "simlex999": ("simlex999.txt", "similarity"),
}
ANALOGY_RESTRICT_VOCAB = 30_000  # gensim's and the published figures' restriction


@dataclass
class AnalogyResult:
    accuracy: float  # over the questions in vocabulary
    coverage: float  # fraction of questions in vocabulary
    correct: int
    total: int  # questions in vocabulary
    questions: int  # all questions
    sections: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (correct, total)


@dataclass
class SimilarityResult:
    spearman: float
    coverage: float
    pairs: int  # pairs in vocabulary


def _upper_index(vectors: KeyedVectors, restrict_vocab: int) -> dict[str, int]:
    """Upper-cased word -> id among the first restrict_vocab words (most frequent spelling wins)."""
    keys = vectors.index_to_key[:restrict_vocab]
    return {key.upper(): i for i, key in reversed(list(enumerate(keys)))}


def read_analogies(path: str | Path) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """Sections of a questions-words file: `: name` lines, then `a b c d` (a:b :: c:d)."""
    sections: list[tuple[str, list]] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            sections.append((line[1:].strip(), []))
            continue
        words = line.upper().split()
        if len(words) != 4 or not sections:
            raise ValueError(f"{path}:{number}: expected ': section' or four words, got {line!r}")
        sections[-1][1].append(tuple(words))
    return sections


def evaluate_analogies(
    vectors: KeyedVectors, path: str | Path, restrict_vocab: int = 30_000, method: str = "3cosadd"
) -> AnalogyResult:
    """Accuracy of b - a + c -> d (3CosAdd, or 3CosMul), the answer searched among the
    restrict_vocab most frequent words, excluding a, b and c."""
    if method not in ("3cosadd", "3cosmul"):
        raise ValueError(f"unknown analogy method {method!r}: use 3cosadd or 3cosmul")
    index = _upper_index(vectors, restrict_vocab)
    normed = vectors.normed[:restrict_vocab]
    result = AnalogyResult(0.0, 0.0, 0, 0, 0)
    for name, questions in read_analogies(path):
        result.questions += len(questions)
        known = [q for q in questions if all(w in index for w in q)]
        ids = np.array([[index[w] for w in q] for q in known], dtype=np.int64).reshape(-1, 4)
        correct = 0
        for start in range(0, len(ids), BATCH):
            a, b, c, d = ids[start : start + BATCH].T
            if method == "3cosadd":
                query = normed[b] - normed[a] + normed[c]
                query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
                scores = query @ normed.T
            else:
                cos = [(1 + normed[w] @ normed.T) / 2 for w in (a, b, c)]
                scores = cos[1] * cos[2] / (cos[0] + 1e-6)
            rows = np.arange(len(a))
            for excluded in (a, b, c):
                scores[rows, excluded] = -np.inf
            correct += int((scores.argmax(axis=1) == d).sum())
        result.sections[name] = (correct, len(known))
        result.correct += correct
        result.total += len(known)
    result.accuracy = result.correct / result.total if result.total else 0.0
    result.coverage = result.total / result.questions if result.questions else 0.0
    return result


def read_word_pairs(path: str | Path) -> list[tuple[str, str, float]]:
    """`word1 word2 score` lines (tab or space separated); `#` lines are comments."""
    pairs = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        try:
            pairs.append((parts[0].strip(), parts[1].strip(), float(parts[2])))
        except (IndexError, ValueError):
            raise ValueError(
                f"{path}:{number}: expected 'word1 word2 score', got {line!r}"
            ) from None
    return pairs


def evaluate_similarity(
    vectors: KeyedVectors, path: str | Path, restrict_vocab: int = 300_000
) -> SimilarityResult:
    """Spearman correlation between human scores and cosine similarities of the known pairs."""
    index = _upper_index(vectors, restrict_vocab)
    pairs = read_word_pairs(path)
    known = [(index.get(a.upper()), index.get(b.upper()), s) for a, b, s in pairs]
    known = [(a, b, s) for a, b, s in known if a is not None and b is not None]
    if len(known) < 2:
        return SimilarityResult(float("nan"), len(known) / max(len(pairs), 1), len(known))
    normed = vectors.normed
    cosines = [float(normed[a] @ normed[b]) for a, b, _ in known]
    rho = spearmanr(cosines, [s for _, _, s in known]).statistic
    return SimilarityResult(float(rho), len(known) / len(pairs), len(known))


def standard_set(name: str) -> Path:
    """The shipped file of a standard set; an unknown name raises ValueError naming the known."""
    if name not in STANDARD_SETS:
        raise ValueError(f"unknown evaluation set {name!r}: use {', '.join(STANDARD_SETS)}")
    return EVAL_SETS / STANDARD_SETS[name][0]


def evaluate_standard(vectors: KeyedVectors, names: list[str]) -> dict[str, dict]:
    """JSON-ready results of the named standard sets: per set its metric, value and coverage
    (an analogy set also its sections); a NaN (too few known pairs) becomes None."""
    results: dict[str, dict] = {}
    for name in names:
        path = standard_set(name)
        if STANDARD_SETS[name][1] == "analogy":
            a = evaluate_analogies(vectors, path, restrict_vocab=ANALOGY_RESTRICT_VOCAB)
            results[name] = {
                "metric": "accuracy", "value": a.accuracy, "coverage": a.coverage,
                "used": a.total, "total": a.questions, "restrict_vocab": ANALOGY_RESTRICT_VOCAB,
                "sections": {k: {"correct": c, "total": t} for k, (c, t) in a.sections.items()},
            }  # fmt: skip
        else:
            s = evaluate_similarity(vectors, path)
            results[name] = {
                "metric": "spearman", "value": None if np.isnan(s.spearman) else s.spearman,
                "coverage": s.coverage, "used": s.pairs, "total": len(read_word_pairs(path)),
            }  # fmt: skip
    return results
