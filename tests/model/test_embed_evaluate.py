"""Analogy and word-similarity evaluation: known answers, and gensim's numbers on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from gensim.models import KeyedVectors as GensimKeyedVectors
from typer.testing import CliRunner

from upvote.embeddings import KeyedVectors
from upvote.embeddings.cli import app
from upvote.embeddings.evaluate import evaluate_analogies, evaluate_similarity


@pytest.fixture
def royal() -> KeyedVectors:
    keys = ["man", "woman", "king", "queen", "boy", "girl", "prince", "apple"]
    vectors = np.array(
        [[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 1, 1], [1, 0, 0.2], [0, 1, 0.2], [1, 0, 1.2],
         [0.5, 0.5, -1]],
        dtype=np.float32,
    )  # fmt: skip
    return KeyedVectors(keys, vectors)


def test_analogies_known_answers_sections_and_coverage(royal, tmp_path):
    path = tmp_path / "q.txt"
    path.write_text(
        ": royalty\n"
        "MAN KING WOMAN QUEEN\n"  # king - man + woman = queen, matched case-insensitively
        "man woman king queen\n"
        "man king woman emperor\n"  # emperor unknown: skipped, lowers coverage
        ": fruit\n"
        "man apple woman king\n"  # wrong on purpose: the answer is not king
    )
    result = evaluate_analogies(royal, path)
    assert result.sections == {"royalty": (2, 2), "fruit": (0, 1)}
    assert (result.correct, result.total, result.questions) == (2, 3, 4)
    assert result.accuracy == pytest.approx(2 / 3)
    assert result.coverage == pytest.approx(3 / 4)
    assert evaluate_analogies(royal, path, method="3cosmul").sections["royalty"] == (2, 2)
    # restricted to the 3 most frequent words, "queen" is never an answer, so no question counts
    assert evaluate_analogies(royal, path, restrict_vocab=3).total == 0


def test_analogy_accuracy_equals_gensims(tmp_path):
    """Noisy pairs (x_i, y_i = x_i + offset + noise): some answers right, some wrong; gensim's
    evaluate_word_analogies on the same vectors must agree question for question."""
    rng = np.random.default_rng(3)
    n, dim = 40, 10
    x = rng.normal(size=(n, dim))
    y = x + rng.normal(size=dim) + rng.normal(scale=0.9, size=(n, dim))
    keys = [f"x{i}" for i in range(n)] + [f"y{i}" for i in range(n)]
    kv = KeyedVectors(keys, np.vstack([x, y]).astype(np.float32))
    lines = [": pairs"] + [f"x{i} y{i} x{j} y{j}" for i in range(n) for j in range(n) if i != j]
    path = tmp_path / "q.txt"
    path.write_text("\n".join(lines) + "\n")
    theirs = GensimKeyedVectors(vector_size=dim)
    theirs.add_vectors(keys, kv.vectors)
    score, _ = theirs.evaluate_word_analogies(str(path), restrict_vocab=60)
    ours = evaluate_analogies(kv, path, restrict_vocab=60)
    assert 0.05 < ours.accuracy < 0.95
    assert ours.accuracy == pytest.approx(score)


def test_similarity_spearman_and_coverage(royal, tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text(
        "# word1\tword2\tscore\n"
        "king\tprince\t9.0\n"
        "man\tboy\t8.0\n"
        "man\tqueen\t2.0\n"
        "apple\tking\t0.5\n"
        "king\tunicorn\t5.0\n"
    )
    result = evaluate_similarity(royal, path)
    assert result.pairs == 4 and result.coverage == pytest.approx(4 / 5)
    assert result.spearman == pytest.approx(1.0)
    reversed_path = tmp_path / "reversed.txt"  # SimLex style, scores reversed: rho = -1
    reversed_path.write_text("king prince 0.5\nman boy 2\nman queen 8\napple king 9\n")
    assert evaluate_similarity(royal, reversed_path).spearman == pytest.approx(-1.0)


def test_evaluate_cli_prints_a_table_and_fails_clearly(royal, tmp_path):
    vectors = tmp_path / "v.txt"
    royal.save_word2vec_format(vectors)
    questions = tmp_path / "q.txt"
    questions.write_text(": royalty\nman king woman queen\n")
    pairs = tmp_path / "p.tsv"
    pairs.write_text("king\tprince\t9\nman\tqueen\t2\napple\tking\t1\n")
    runner = CliRunner()
    args = ["evaluate", str(vectors), "--analogies", str(questions), "--similarity", str(pairs)]
    result = runner.invoke(app, args, env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "royalty" in result.output and "1.0000" in result.output and "spearman" in result.output
    missing = runner.invoke(
        app, ["evaluate", str(tmp_path / "nope.txt"), "--similarity", str(pairs)]
    )
    assert missing.exit_code == 1 and "not found" in missing.output
    bad = tmp_path / "bad.txt"
    bad.write_text("king prince\n")
    result = runner.invoke(app, ["evaluate", str(vectors), "--similarity", str(bad)])
    assert result.exit_code == 1 and "bad.txt:1" in result.output


def test_shipped_standard_sets_score_as_gensim_scores_them(tmp_path):
    from upvote.embeddings.evaluate import evaluate_standard, read_word_pairs, standard_set

    pairs = read_word_pairs(standard_set("wordsim353"))
    words = sorted({w.lower() for a, b, _ in pairs for w in (a, b)})
    rng = np.random.default_rng(0)
    kv = KeyedVectors(words, rng.normal(size=(len(words), 8)).astype(np.float32))
    path = tmp_path / "v.txt"
    kv.save_word2vec_format(path)
    results = evaluate_standard(kv, ["wordsim353", "analogy", "simlex999"])
    ws = results["wordsim353"]
    assert (ws["metric"], ws["coverage"], ws["used"], ws["total"]) == ("spearman", 1.0, 353, 353)
    theirs = GensimKeyedVectors.load_word2vec_format(str(path))
    (_, _), (rho, _), _ = theirs.evaluate_word_pairs(str(standard_set("wordsim353")))
    assert ws["value"] == pytest.approx(rho, abs=1e-4)
    analogy = results["analogy"]
    assert analogy["total"] == 19544 and 0 < analogy["coverage"] < 1
    assert analogy["restrict_vocab"] == 30_000 and "family" in analogy["sections"]
    assert 0 < results["simlex999"]["used"] < results["simlex999"]["total"] == 999

    runner = CliRunner()
    result = runner.invoke(
        app, ["evaluate", str(path), "--standard", "wordsim353"], env={"COLUMNS": "120"}
    )
    assert result.exit_code == 0 and "wordsim353.tsv" in result.output, result.output
    bad = runner.invoke(app, ["evaluate", str(path), "--standard", "toefl"])
    assert bad.exit_code == 1 and "--standard: unknown set(s) toefl" in bad.output
