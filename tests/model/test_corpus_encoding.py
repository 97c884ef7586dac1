"""The numba encoder gives exactly what the pure-Python encoder gave: tokens, ids, counts, shards.

`reference_encode` below is the previous implementation (Counter counting with word2vec.c's
pruning, WordTokenizer / str.split per document, shards filled document by document), kept here
as the definition the fast path must match.
"""

from __future__ import annotations

import gzip
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import upvote.embeddings.corpus as corpus_module
from upvote.embeddings.corpus import CorpusError, encode_corpus, iter_documents
from upvote.embeddings.vocab import EmptyVocabularyError, Vocab
from upvote.tokenizer.word import WordTokenizer

# the non-ASCII characters whose str.lower() holds an ASCII letter, Python's whitespace beyond
# ASCII, digits, punctuation, a Greek final sigma, a BOM, CJK, an emoji and a combining mark
TRICKY = (
    "\ufeffİstanbul KELVİN \u212aelvin and \u212a\u212a; 1984-2024 was 3x faster!\n"
    "caf\u00e9 na\u00efve \u00c9COLE stra\u00dfe \u1e9e \u0130I\u0131i \u03a3\u039f\u03a3 "
    "\u6f22\u5b57 \U0001f600ok\u00a0no\u2003yes\u3000end\u2028same\u2029line\x85here\r\n"
    "tabs\tand\x0bvertical\x0cfeeds\x1cfile\x1dgroup\x1erecord\x1funit\r"
    "a\u0301ccent e\u0308 \u00bd \u0663\u0664 x\u00b2 \u2460 \uff21\uff42 \ufb01ne\n"
    "\n   \n"
    "last line without newline 0 9"
)


def reference_count(token_lists, prune_at: int) -> Counter[str]:
    counter: Counter[str] = Counter()
    floor = 1
    for tokens in token_lists:
        counter.update(tokens)
        if len(counter) > prune_at:
            counter = Counter({word: n for word, n in counter.items() if n > floor})
            floor += 1
    return counter


def reference_encode(documents, tokenize, min_count, max_vocab, shard_tokens, prune_at):
    """(vocab words, vocab counts, shards as lists) the way the previous encoder made them."""
    split = getattr(tokenize, "tokenize", tokenize) or str.split  # an object, a callable or None

    def token_lists():
        for doc in documents:
            yield split(doc) if isinstance(doc, str) else doc

    counter = reference_count(token_lists(), prune_at)
    kept = [(word, n) for word, n in counter.items() if n >= min_count]
    kept = [kept[i] for i in sorted(range(len(kept)), key=lambda i: (-kept[i][1], -i))]
    kept = kept[:max_vocab]
    if not kept:
        raise EmptyVocabularyError(f"none of the {len(counter):,} distinct")
    vocab = Vocab([w for w, _ in kept], np.array([n for _, n in kept]))
    shards, current = [], []
    for tokens in token_lists():
        ids = [i for i in map(vocab.index.get, tokens) if i is not None]
        if not ids:
            continue
        ids.append(-1)
        if len(current) + len(ids) > shard_tokens and current:
            shards.append(current)
            current = []
        if len(ids) > shard_tokens:
            shards.append(ids)
        else:
            current = current + ids
    if current:
        shards.append(current)
    return vocab.words, vocab.counts.tolist(), shards


def check_same(documents, tmp_path, tokenize=None, min_count=1, max_vocab=None, shard_tokens=50,
               prune_at=None, monkeypatch=None):  # fmt: skip
    """encode_corpus gives the reference's vocabulary, counts and shards (and returns it)."""
    if prune_at is not None:
        monkeypatch.setattr(corpus_module, "PRUNE_AT", prune_at)
    words, counts, shards = reference_encode(
        documents, tokenize, min_count, max_vocab, shard_tokens, prune_at or 10**12
    )
    corpus = encode_corpus(
        documents, tmp_path / "enc", tokenize=tokenize, min_count=min_count,
        max_vocab=max_vocab, shard_tokens=shard_tokens,
    )  # fmt: skip
    assert corpus.vocab.words == words
    assert corpus.vocab.counts.tolist() == counts
    ours = [shard.tolist() for shard in corpus.shards()]
    assert len(ours) == len(shards)
    assert ours == shards
    assert corpus.meta["n_documents"] == sum(s.count(-1) for s in shards)
    return corpus


def write(path: Path, text: str, gzipped: bool = False) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gzipped else data)
    return path


def test_only_two_characters_lower_case_into_ascii_and_the_kernel_knows_them():
    """The kernel's special cases are all of Unicode's: found by brute force over every code
    point (if a Python release adds one, this fails and names it)."""
    special = {}
    for code in range(0x80, sys.maxunicode + 1):
        lowered = chr(code).lower()
        if 0xD800 <= code < 0xE000 or not any(c.isascii() and c.isalnum() for c in lowered):
            continue
        special[chr(code)] = lowered
    assert special == {"\u0130": "i\u0307", "\u212a": "k"}


@pytest.mark.parametrize("tokenizer", ["word", "space"])
def test_every_code_point_tokenizes_as_python_does(tokenizer, tmp_path):
    """Each character between letters, in every context the kernel distinguishes."""
    chars = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c < 0xE000]
    text = "\n".join("".join(f"a{c}b {c}Q{c}7 " for c in chars[i : i + 500])
                     for i in range(0, len(chars), 500))  # fmt: skip
    tokenize = WordTokenizer() if tokenizer == "word" else None
    path = write(tmp_path / "all.txt", "plain text first " * 5000 + text)  # NUL: not sniffed
    corpus = encode_corpus(iter_documents(path), tmp_path / "enc", tokenize=tokenize, min_count=1)
    ids = np.concatenate(list(corpus.shards()))
    ours = [corpus.vocab.words[i] for i in ids[ids >= 0].tolist()]
    split = WordTokenizer().tokenize if tokenize else str.split
    theirs = [token for doc in iter_documents(path) for token in split(doc)]
    assert ours == theirs


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("tokenizer", ["word", "space"])
def test_tricky_text_file_matches_the_reference(tokenizer, gzipped, tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_module, "PSEUDO_DOCUMENT_WORDS", 3)  # cuts inside lines too
    monkeypatch.setattr(corpus_module, "READ_CHUNK_BYTES", 7)  # words straddle read chunks
    path = write(tmp_path / "tricky", TRICKY * 3, gzipped)
    tokenize = WordTokenizer().tokenize if tokenizer == "word" else None
    documents = iter_documents(path)
    check_same(documents, tmp_path, tokenize, shard_tokens=9)


def test_invalid_utf8_is_read_as_replacement_characters(tmp_path):
    # x\xff, x\xfe and x\xc3 are one word once decoded: "x\ufffd", seen 3 times
    raw = b"ok \xff\xfe bad\xc3 mid\xe2\x84 K\xe2\x84\xaa \xed\xa0\x80x \xf0\x9f\x98 "
    raw += b"x\xff x\xfe x\xc3 end\xe2"
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine words first " * 5000 + raw)  # sniffing only reads the start
    for tokenize in (None, WordTokenizer()):
        check_same(iter_documents(path), tmp_path / str(tokenize), tokenize)


@pytest.mark.parametrize("tokenizer", ["word", "space"])
def test_string_documents_keep_their_boundaries(tokenizer, tmp_path):
    """Documents given as strings (Parquet, SQL, lists): a newline inside is not a boundary and
    long documents are not cut; empty documents give nothing."""
    docs = [line for line in TRICKY.split(" ")] + ["", "  ", "one\ntwo\rthree"] + [TRICKY] * 2
    tokenize = WordTokenizer() if tokenizer == "word" else None
    check_same(docs, tmp_path, tokenize, shard_tokens=7)


def test_token_lists_and_custom_tokenizers(tmp_path):
    docs = [["a", "b", "a"], [], ["", "a b", "é"], ["b"] * 30, ["c"]]
    check_same(docs, tmp_path / "lists", shard_tokens=8)
    texts = ["x-y z", "y,z", "x"] * 5
    check_same(texts, tmp_path / "custom", tokenize=lambda t: t.replace(",", "-").split("-"))


@pytest.mark.parametrize("min_count, max_vocab", [(1, None), (2, None), (3, 4), (1, 1), (2, 3)])
def test_min_count_and_max_vocab_keep_gensims_tie_order(min_count, max_vocab, tmp_path):
    rng = np.random.default_rng(0)
    docs = [" ".join(f"w{i}" for i in rng.integers(40, size=12)) for _ in range(30)]
    check_same(docs, tmp_path, min_count=min_count, max_vocab=max_vocab)


@pytest.mark.parametrize("prune_at", [3, 10, 25])
def test_pruning_matches_word2vec_c_semantics(prune_at, tmp_path, monkeypatch):
    """Pruned counting (and the second read it forces) gives the reference's counts and ids."""
    rng = np.random.default_rng(1)
    docs = [" ".join(f"w{i}" for i in rng.zipf(1.3, size=15) % 300) for _ in range(60)]
    path = write(tmp_path / "zipf.txt", "\n".join(docs))
    check_same(iter_documents(path), tmp_path, prune_at=prune_at, monkeypatch=monkeypatch)
    check_same(docs, tmp_path / "list", prune_at=prune_at, monkeypatch=monkeypatch)


def test_pseudo_documents_cut_long_lines_like_gensim(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_module, "PSEUDO_DOCUMENT_WORDS", 7)
    monkeypatch.setattr(corpus_module, "READ_CHUNK_BYTES", 10)
    words = [f"w{i % 11}" for i in range(30)]
    path = write(tmp_path / "text8", " ".join(words) + "\nshort line\n" + " ".join(words[:14]))
    corpus = check_same(iter_documents(path), tmp_path, shard_tokens=10**6)
    ids = np.concatenate(list(corpus.shards()))
    assert np.diff(np.flatnonzero(ids == -1), prepend=-1).tolist() == [8, 8, 8, 8, 3, 3, 8, 8]


def test_empty_and_unknown_corpora_are_clear_errors(tmp_path):
    blank = write(tmp_path / "blank.txt", "  \n\n \t \n" * 100)
    with pytest.raises(CorpusError, match="empty: no tokens"):
        encode_corpus(iter_documents(blank), tmp_path / "a")
    punctuation = write(tmp_path / "punct.txt", "... !!! ---\n" * 100)
    with pytest.raises(CorpusError, match="empty: no tokens"):
        encode_corpus(iter_documents(punctuation), tmp_path / "b", tokenize=WordTokenizer())
    with pytest.raises(EmptyVocabularyError, match="none of the 2 distinct"):
        encode_corpus(["rare words"], tmp_path / "c")
    known = Vocab(["known"], np.array([3]))
    with pytest.raises(CorpusError, match="no in-vocabulary tokens"):
        encode_corpus(["other words"], tmp_path / "d", vocab=known)


def test_given_vocabulary_encodes_in_one_pass(tmp_path):
    vocab = Vocab(["b", "a"], np.array([5, 3]))
    corpus = encode_corpus(iter(["a b c", "c", "b"]), tmp_path, vocab=vocab, shard_tokens=3)
    assert [s.tolist() for s in corpus.shards()] == [[1, 0, -1], [0, -1]]


def test_real_text_matches_the_reference(shared_data, tmp_path, monkeypatch):
    """A few MB of the text8-style Wikipedia dump, both tokenizers, plain and gzip, with small
    pseudo-documents and shards so that every boundary rule is exercised many times."""
    monkeypatch.setattr(corpus_module, "PSEUDO_DOCUMENT_WORDS", 997)
    source = shared_data / "text" / "enwiki2015_text8style_first100M.txt.gz"
    if not source.exists():
        pytest.skip(f"needs {source}")
    with gzip.open(source, "rb") as f:
        text = f.read(3_000_000).decode(errors="replace")
    text = text[:1_000_000] + "\n" + TRICKY + "\n" + text[1_000_000:]
    for gzipped in (False, True):
        path = write(tmp_path / f"wiki{int(gzipped)}", text, gzipped)
        for tokenize in (None, WordTokenizer()):
            check_same(iter_documents(path), tmp_path / f"{gzipped}{tokenize}", tokenize,
                       min_count=3, shard_tokens=100_003)  # fmt: skip


def test_vector_text_is_printf_9g_for_every_kind_of_float32(tmp_path):
    """save_word2vec_format's numba formatter writes what f"{v:.9g}" wrote: random bit patterns
    (denormals, huge, NaN, infinities), signed zeros, powers of ten and rounding edges."""
    from upvote.embeddings import KeyedVectors

    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2**32, size=100_000, dtype=np.uint64).astype(np.uint32)
    edges = [0.0, -0.0, 1e-45, 3.4028235e38, 1.1754944e-38, 1e-4, 9.9999997e-05, 1e9, 1e8,
             999999999.0, 123456789.0, 0.1, 1 / 3, 2.0**-20, -7.5, 100.0, 1e-8, -3.5e7]  # fmt: skip
    values = np.concatenate([bits.view(np.float32), np.array(edges, dtype=np.float32)])
    values = values[: len(values) // 9 * 9].reshape(-1, 9)
    keys = [f"w{i}é" for i in range(len(values))]
    path = tmp_path / "v.txt"
    KeyedVectors(keys, values).save_word2vec_format(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == f"{len(keys)} 9"
    expected = [" ".join([key, *(f"{v:.9g}" for v in row.tolist())]) for key, row in
                zip(keys, values, strict=True)]  # fmt: skip
    assert lines[1:] == expected


@pytest.mark.parametrize("tokenizer", ["word", "space"])
def test_parquet_column_matches_the_reference(tokenizer, tmp_path, monkeypatch):
    """Parquet texts are documents as they are: nulls and empty strings skipped, newlines inside
    and long texts kept whole (only text files are cut into pseudo-documents)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.setattr(corpus_module, "PSEUDO_DOCUMENT_WORDS", 2)
    texts = [None, "", *TRICKY.split(" "), "a\nb\rc d", TRICKY, None, "  "] * 3
    path = tmp_path / "titles.parquet"
    pq.write_table(pa.table({"title": texts}), path, row_group_size=7)
    monkeypatch.setattr(corpus_module, "BATCH_DOCUMENTS", 5)
    tokenize = WordTokenizer() if tokenizer == "word" else None
    check_same(iter_documents(path), tmp_path, tokenize, shard_tokens=11)


def test_invalid_utf8_in_parquet_is_read_as_in_text_files(tmp_path):
    """The previous encoder failed on such a file (UnicodeDecodeError); now its texts read as a
    text file's do, with U+FFFD."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = [b"ok x\xff x\xfe", b"x\xc3 fine", b"fine ok"]
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"text": pa.array(raw, pa.binary()).view(pa.string())}), path)
    corpus = encode_corpus(iter_documents(path), tmp_path / "enc", min_count=1)
    counts = dict(zip(corpus.vocab.words, corpus.vocab.counts.tolist(), strict=True))
    assert counts == {"x\ufffd": 3, "ok": 2, "fine": 2}


def test_sentencepiece_tokenizes_in_batches(tmp_path):
    from upvote.tokenizer import SentencePieceTokenizer

    lines = TRICKY.splitlines() * 20 + [f"title number {i} about rust" for i in range(300)]
    sp = SentencePieceTokenizer.train(lines, vocab_size=300)
    words, counts, shards = reference_encode(lines, sp.tokenize, 1, None, 50, 10**12)

    def one_at_a_time(text):
        raise AssertionError("encode_corpus should tokenize in batches")

    sp.tokenize = one_at_a_time
    corpus = encode_corpus(lines, tmp_path, tokenize=sp, min_count=1, shard_tokens=50)
    assert corpus.vocab.words == words and corpus.vocab.counts.tolist() == counts
    assert [s.tolist() for s in corpus.shards()] == shards


def test_reader_thread_hands_errors_over_and_stops_when_left():
    from upvote.prefetch import prefetch

    def failing():
        yield from range(3)
        raise CorpusError("lost the connection")

    seen = []
    with pytest.raises(CorpusError, match="lost the connection"):
        seen.extend(prefetch(failing()))
    assert seen == [0, 1, 2]

    closed = []

    def endless():
        try:
            yield from iter(int, 1)  # zeros forever
        finally:
            closed.append(True)

    for i, _ in enumerate(prefetch(endless())):
        if i == 10:
            break
    assert closed == [True]  # the reader stopped and closed its source
