"""The benchmarks' corpus and scoring: the text8-style Wikipedia prefix and the standard word sets.

Kept free of numba and gensim so that scripts run on a machine with only torch and numpy (the GPU
machine): DEFAULT_CORPUS and EVAL live in ../shared/data, which a GPU run carries as a copy.
"""

from __future__ import annotations

from pathlib import Path

from upvote.embeddings.corpus import iter_documents
from upvote.embeddings.evaluate import evaluate_analogies, evaluate_similarity
from upvote.embeddings.vectors import KeyedVectors

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_CORPUS = SHARED / "text" / "enwiki2015_text8style_first100M.txt.gz"
EVAL = SHARED / "eval"


def write_prefix(corpus: Path, max_words: int | None, path: Path) -> int:
    """The corpus as 10,000-word lines (what both trainers read); returns the word count."""
    words = 0
    with open(path, "w") as out:
        for doc in iter_documents(corpus):
            tokens = doc.split()
            if max_words is not None:
                tokens = tokens[: max_words - words]
            out.write(" ".join(tokens) + "\n")
            words += len(tokens)
            if max_words is not None and words >= max_words:
                break
    return words


def quality(kv: KeyedVectors, eval_dir: Path = EVAL) -> dict:
    """Analogy accuracy (30k most frequent words, as gensim), WS-353 and SimLex Spearman."""
    analogy = evaluate_analogies(kv, eval_dir / "questions-words.txt", restrict_vocab=30_000)
    return {
        "analogy": round(analogy.accuracy, 4),
        "analogy_coverage": round(analogy.coverage, 4),
        "ws353": round(evaluate_similarity(kv, eval_dir / "wordsim353.tsv").spearman, 4),
        "simlex": round(evaluate_similarity(kv, eval_dir / "simlex999.txt").spearman, 4),
    }
