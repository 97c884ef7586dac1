"""SentencePiece and text8-style tokenizers, and the `upvote tokenizer` commands."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from upvote.cli import app
from upvote.tokenizer import SentencePieceTokenizer, WordTokenizer
from upvote.tokenizer.sentencepiece import bounded_pieces


def flat(output: str) -> str:
    """CLI output without Rich's error box and line wrapping, for substring checks."""
    return " ".join(re.sub("[│╭╮╰╯─]", " ", output).split())


SAMPLE = Path(__file__).resolve().parents[2] / "src/upvote/data/sample/stories.parquet"


@pytest.fixture(scope="module")
def titles() -> list[str]:
    return pd.read_parquet(SAMPLE, columns=["title"]).title.dropna().head(5000).tolist()


@pytest.fixture(scope="module")
def tokenizer(titles) -> SentencePieceTokenizer:
    return SentencePieceTokenizer.train(titles, vocab_size=1000)


def test_trains_on_titles_and_round_trips_text(tokenizer, titles):
    assert len(tokenizer) == 1000
    title = titles[0]
    pieces = tokenizer.tokenize(title)
    ids = tokenizer.encode(title)
    assert len(pieces) == len(ids) > 0
    assert [tokenizer.id_to_piece(i) for i in ids] == pieces
    assert tokenizer.decode(ids) == title


def test_batch_matches_single(tokenizer, titles):
    batch = titles[:50]
    assert tokenizer.tokenize_batch(batch) == [tokenizer.tokenize(t) for t in batch]
    assert tokenizer.encode_batch(batch) == [tokenizer.encode(t) for t in batch]


def test_frequent_words_are_whole_pieces(tokenizer):
    assert tokenizer.tokenize("Show HN") == ["▁Show", "▁HN"]


def test_small_corpus_trains_below_requested_vocab():
    tok = SentencePieceTokenizer.train(["hello world", "hello there", None, ""], vocab_size=8000)
    assert 5 < len(tok) < 100
    assert tok.meta["trained_on"] == 2


def test_empty_corpus_is_a_clear_error():
    with pytest.raises(ValueError, match="empty corpus"):
        SentencePieceTokenizer.train(["", None])


def test_save_load_gives_identical_encoding(tokenizer, titles, tmp_path):
    tokenizer.save(tmp_path / "tok")
    loaded = SentencePieceTokenizer.load(tmp_path / "tok")
    assert loaded.encode_batch(titles[:100]) == tokenizer.encode_batch(titles[:100])
    assert loaded.meta == tokenizer.meta
    with pytest.raises(FileNotFoundError, match="no tokenizer"):
        SentencePieceTokenizer.load(tmp_path / "missing")


def test_word_tokenizer_normalises_like_text8():
    assert WordTokenizer().tokenize("Rust 1.0 is OUT, finally!") == [
        "rust", "one", "zero", "is", "out", "finally",
    ]  # fmt: skip
    assert WordTokenizer().tokenize("  ") == []


def test_cli_train_then_encode(tmp_path):
    csv = tmp_path / "titles.csv"
    pd.DataFrame({"title": ["Show HN: a tiny database"] * 3 + ["Ask HN: why Rust?"] * 3}).to_csv(
        csv, index=False
    )
    runner = CliRunner()
    out = tmp_path / "tok"
    result = runner.invoke(app, ["tokenizer", "train", "-i", str(csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "from 6 texts" in result.output
    result = runner.invoke(app, ["tokenizer", "encode", "-m", str(out), "Show HN"])
    assert result.exit_code == 0, result.output
    assert result.output.split() == SentencePieceTokenizer.load(out).tokenize("Show HN")


def test_cli_errors_name_the_problem(tmp_path):
    runner = CliRunner()
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("title\ncaf\xe9\n".encode("latin-1"))
    result = runner.invoke(app, ["tokenizer", "train", "-i", str(bad), "-o", str(tmp_path / "t")])
    assert result.exit_code != 0
    assert "not UTF-8" in flat(result.output)
    result = runner.invoke(
        app, ["tokenizer", "train", "-i", str(SAMPLE), "--column", "nope", "-o", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "missing required column(s) nope" in flat(result.output)
    result = runner.invoke(app, ["tokenizer", "encode", "-m", str(tmp_path / "none"), "x"])
    assert result.exit_code != 0
    assert "no tokenizer" in flat(result.output)
    binary = tmp_path / "corpus"  # no extension and not text
    binary.write_bytes(bytes(range(256)) * 10)
    result = runner.invoke(
        app, ["tokenizer", "train", "-i", str(binary), "-o", str(tmp_path / "b")]
    )
    assert result.exit_code != 0
    assert "not UTF-8" in flat(result.output)


def one_line_corpus(n_words: int = 200_000, distinct: int = 5000) -> str:
    """text8-like: one line of Zipf-distributed words (letters only), ~1.4 MB."""
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, size=rng.integers(3, 9))) for _ in range(distinct)]
    return " ".join(words[i] for i in rng.zipf(1.2, size=n_words) % distinct)


def test_one_line_corpus_trains_the_requested_vocabulary(tmp_path):
    """SentencePiece skips "sentences" over 4,192 bytes: a one-line corpus (text8) used to give a
    couple of hundred pieces (or none at all) for --vocab-size 2000."""
    tok = SentencePieceTokenizer.train([one_line_corpus()], vocab_size=2000)
    assert len(tok) == 2000 and tok.meta["trained_on"] == 1
    text8 = tmp_path / "text8"  # named as the famous corpus is: no extension, told by content
    text8.write_text(one_line_corpus())
    out = tmp_path / "tok"
    args = ["tokenizer", "train", "-i", str(text8), "--vocab-size", "2000", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2000 pieces from 1 texts" in result.output


def test_long_texts_are_cut_at_spaces_into_bounded_pieces():
    text = "ünïcode " * 3000 + "x" * 5000 + " tail"
    pieces = list(bounded_pieces(text, limit=1000))
    assert all(len(piece.encode()) <= 1000 for piece in pieces)
    assert "".join(" ".join(pieces).split()) == "".join(text.split())
    assert list(bounded_pieces("short text", limit=1000)) == ["short text"]
