"""The CPU word2vec engine learns planted structure, is deterministic, resumes, fails clearly."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest
from typer.testing import CliRunner

from upvote.embeddings import KeyedVectors, Word2VecParams, train
from upvote.embeddings.cli import app
from upvote.embeddings.corpus import CorpusError, EncodedCorpus, encode_corpus, iter_documents
from upvote.embeddings.engines import cpu
from upvote.embeddings.engines.cpu import load_checkpoint
from upvote.embeddings.engines.cpu_kernels import huffman, merge_delta
from upvote.embeddings.vocab import EmptyVocabularyError, Vocab

GROUPS, PER_GROUP = 6, 8


def word(group: int, i: int) -> str:
    return f"{chr(97 + group)}{chr(97 + i)}w"  # letters only: survives the text8 word tokenizer


def planted_corpus(n_docs: int = 600, length: int = 20, seed: int = 0) -> list[list[str]]:
    """Documents each drawn from one word group: words co-occur only within their group."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n_docs):
        group = int(rng.integers(GROUPS))
        docs.append([word(group, int(i)) for i in rng.integers(PER_GROUP, size=length)])
    return docs


def group_precision(kv: KeyedVectors, topn: int = 5) -> float:
    hits = 0
    for key in kv.index_to_key:
        hits += sum(other[0] == key[0] for other, _ in kv.most_similar(key, topn=topn))
    return hits / (len(kv) * topn)


FAST = dict(vector_size=20, window=3, negative=5, min_count=1, sample=0.0, threads=1)


@pytest.mark.parametrize("sg", [True, False], ids=["skipgram", "cbow"])
def test_planted_groups_are_recovered_and_loss_falls(sg, tmp_path):
    kv = train(planted_corpus(), epochs=4, sg=sg, checkpoint_dir=tmp_path, **FAST)
    assert len(kv) == GROUPS * PER_GROUP
    assert group_precision(kv) > 0.9
    losses = load_checkpoint(tmp_path)[1]["losses"]
    assert len(losses) == 4
    assert losses[-1] < 0.9 * losses[0], losses


@pytest.mark.parametrize("sg", [True, False], ids=["skipgram", "cbow"])
def test_hierarchical_softmax_recovers_the_groups_alone_and_with_negative_sampling(sg, tmp_path):
    for negative in (0, 5):
        out = tmp_path / str(negative)
        params = {**FAST, "negative": negative}
        kv = train(planted_corpus(), epochs=4, sg=sg, hs=True, checkpoint_dir=out, **params)
        assert group_precision(kv) > 0.9
        weights, state = load_checkpoint(out)
        assert weights["syn1"].any()  # the inner nodes of the tree were trained
        assert weights["syn1neg"].shape[0] == (len(kv) if negative else 0)
        assert state["losses"][-1] < 0.9 * state["losses"][0]


def test_huffman_tree_is_optimal_and_prefix_free():
    # the textbook example (CLRS 16.3): a:45 d:16 b:13 c:12 e:9 f:5, ids by count descending
    vocab = Vocab(list("adbcef"), np.array([45, 16, 13, 12, 9, 5]))
    codes, points, lengths = huffman(vocab.counts)
    words = ["".join(map(str, codes[i, : lengths[i]])) for i in range(len(vocab))]
    assert words == ["0", "111", "101", "100", "1101", "1100"]
    assert all(not b.startswith(a) for a in words for b in words if a != b)  # prefix-free
    assert (points[:, 0] == 0).all()  # every path starts at the root, row 0 of syn1
    assert points.max() == len(vocab) - 2  # V - 1 inner nodes


def test_huffman_paths_are_as_short_as_gensims():
    """Any optimal tree has the same weighted path length; gensim's is one."""
    from gensim.models import Word2Vec

    docs = [*planted_corpus(n_docs=50), ["zz"] * 300, ["yy", "xx"] * 40]
    model = Word2Vec(vector_size=4, min_count=1, hs=1, negative=0)
    model.build_vocab(docs)
    vocab = Vocab(list(model.wv.index_to_key), model.wv.expandos["count"].astype(np.int64))
    _, _, lengths = huffman(vocab.counts)
    theirs = np.array([len(model.wv.get_vecattr(w, "code")) for w in vocab.words])
    assert (vocab.counts * lengths).sum() == (vocab.counts * theirs).sum()


def test_untrained_vectors_do_not_show_the_groups():
    """The precision threshold above means something: one tiny pass at a low rate stays random."""
    kv = train(planted_corpus(n_docs=5), epochs=1, alpha=1e-4, **FAST)
    assert group_precision(kv) < 0.5


def test_fixed_seed_and_one_thread_is_bit_for_bit_deterministic():
    corpus = planted_corpus(n_docs=200)
    a = train(corpus, epochs=2, seed=7, **FAST)
    b = train(corpus, epochs=2, seed=7, **FAST)
    c = train(corpus, epochs=2, seed=8, **FAST)
    assert np.array_equal(a.vectors, b.vectors)
    assert not np.array_equal(a.vectors, c.vectors)


@pytest.mark.parametrize("sg", [True, False], ids=["skipgram", "cbow"])
def test_two_threads_learn_as_well(sg, tmp_path):
    kv = train(planted_corpus(), epochs=4, sg=sg, **{**FAST, "threads": 2})
    assert group_precision(kv) > 0.9


def test_merge_adds_a_threads_changes_to_the_rows_asked_and_restarts_its_copy():
    rng = np.random.default_rng(0)
    shared = rng.random((5, 3), dtype=np.float32)
    start = shared.copy()
    shared += 1.0  # the other thread's merges since this copy started
    local = start + np.arange(15, dtype=np.float32).reshape(5, 3)  # this thread's updates
    before = shared.copy()
    merge_delta(shared, local, start, 3)
    expected = before[:3] + np.arange(9, dtype=np.float32).reshape(3, 3)
    np.testing.assert_allclose(shared[:3], expected, rtol=1e-6)  # both threads' updates kept
    assert np.array_equal(shared[3:], before[3:])  # rows not asked: untouched
    assert np.array_equal(local[:3], shared[:3]) and np.array_equal(start[:3], shared[:3])


@pytest.mark.parametrize("sg", [True, False], ids=["skipgram", "cbow"])
def test_threads_merge_every_update_of_their_private_output_rows(sg, tmp_path, monkeypatch):
    """2 threads train private copies of syn1neg (zeros at start), merged into the shared
    table: every row must reach it, at about the size plain Hogwild gives (none lost, none counted
    twice: a merge that double-counts makes the rows ~90x larger; the merge's own test above
    catches one that overwrites)."""
    corpus = planted_corpus(n_docs=12_000)  # 240k words: 12 jobs, 6 per thread

    def output_rows(name: str, **settings) -> np.ndarray:
        for setting, value in settings.items():
            monkeypatch.setattr(cpu, setting, value)
        out = tmp_path / name
        train(corpus, epochs=1, sg=sg, checkpoint_dir=out, **{**FAST, "threads": 2})
        return np.linalg.norm(load_checkpoint(out)[0]["syn1neg"], axis=1)

    hogwild = output_rows("shared", PRIVATE_BYTES=0)  # no copies: one shared table
    merged = output_rows("merged", PRIVATE_BYTES=1 << 30)  # every row merged after each job
    at_end = output_rows("at-end", HOT_ROWS=0, SYNC_WORDS=10**9)  # rows merged only at the end
    assert (merged > 0).all() and (at_end > 0).all()
    ratio = merged.mean() / hogwild.mean()
    # 1.2-1.35 in runs here: each copy misses the other's updates until merged, and plain
    # Hogwild loses some of its own to races
    assert 0.9 < ratio < 2.0, ratio


def test_vocab_order_min_count_and_subsampling():
    vocab = Vocab.from_counter(Counter(["b", "a", "a", "c", "a", "b", "d"]), min_count=2)
    assert vocab.words == ["a", "b"]  # count-descending; c, d below min_count
    assert vocab.counts.tolist() == [3, 2]
    keep = Vocab(["x", "y"], np.array([1000, 2])).keep_probability(1e-2)
    t = 1e-2 * 1002
    assert keep[0] == pytest.approx((np.sqrt(1000 / t) + 1) * t / 1000, rel=1e-6)
    assert keep[1] == 1.0  # rare words are always kept


def test_vocabulary_order_is_gensims(tmp_path):
    from gensim.models import Word2Vec

    rng = np.random.default_rng(0)
    docs = [[f"w{i}" for i in rng.integers(300, size=50)] for _ in range(100)]  # many ties
    model = Word2Vec(vector_size=4, min_count=3)
    model.build_vocab(docs)
    assert encode_corpus(docs, tmp_path, min_count=3).vocab.words == model.wv.index_to_key


def test_alias_table_is_exactly_the_noise_distribution():
    counts = np.array([1000, 300, 300, 50, 7, 5, 5, 1])
    prob, alias = Vocab([str(i) for i in range(8)], counts).noise_table(0.75)
    n = len(counts)
    implied = prob.astype(np.float64) / n  # column i keeps itself with prob[i] ...
    np.add.at(implied, alias, (1 - prob.astype(np.float64)) / n)  # ... else gives way to alias[i]
    expected = counts**0.75 / (counts**0.75).sum()
    assert np.allclose(implied, expected, atol=1e-6)


def test_noise_words_and_windows_are_drawn_with_the_right_frequencies():
    """The kernels' draws (multiply-shift ranges, the alias coin as a conditional move) follow
    unigram**0.75 and a uniform window shrink: a swapped coin or a biased range would show."""
    from numba import njit

    from upvote.embeddings.engines.primitives import draw_noise, dynamic_window

    @njit
    def draws(n, state, prob, alias, window):
        noise, shrink = np.empty(n, np.int64), np.empty(n, np.int64)
        for i in range(n):
            noise[i], state = draw_noise(state, prob, alias)
            lo, _, state = dynamic_window(100, 1000, window, state)
            shrink[i] = lo - (100 - window)
        return noise, shrink

    counts = np.array([1000, 300, 300, 50, 7, 5, 5, 1])
    prob, alias = Vocab([str(i) for i in range(8)], counts).noise_table(0.75)
    noise, shrink = draws(400_000, np.uint64(12345), prob, alias, 5)
    expected = counts**0.75 / (counts**0.75).sum()
    assert np.allclose(np.bincount(noise, minlength=8) / len(noise), expected, atol=0.003)
    assert np.allclose(np.bincount(shrink, minlength=5) / len(shrink), 0.2, atol=0.003)


def test_encoded_corpus_layout(tmp_path):
    docs = ["the cat sat", "the dog", "zebra"]
    corpus = encode_corpus(docs, tmp_path, min_count=1, shard_tokens=4)
    assert (tmp_path / "vocab.tsv").read_text().splitlines()[0] == "the\t2"
    shards = [np.load(p) for p in sorted((tmp_path / "shards").glob("*.npy"))]
    ids = corpus.vocab.index
    assert np.concatenate(shards).tolist() == [
        ids["the"], ids["cat"], ids["sat"], -1, ids["the"], ids["dog"], -1, ids["zebra"], -1
    ]  # fmt: skip
    # shards never exceed shard_tokens and never split a document
    assert [len(s) for s in shards] == [4, 3, 2]
    reopened = EncodedCorpus.open(tmp_path)
    assert reopened.meta["n_tokens"] == 6 and reopened.vocab.words == corpus.vocab.words


def test_text8_style_single_line_is_cut_into_documents(tmp_path, monkeypatch):
    import upvote.embeddings.corpus as corpus_module

    monkeypatch.setattr(corpus_module, "PSEUDO_DOCUMENT_WORDS", 7)
    monkeypatch.setattr(corpus_module, "READ_CHUNK_CHARS", 10)  # words straddle chunk edges
    words = [f"w{i}" for i in range(30)]
    path = tmp_path / "text8.txt"
    path.write_text(" ".join(words))
    docs = list(iter_documents(path))
    assert [len(d.split()) for d in docs] == [7, 7, 7, 7, 2]
    assert " ".join(docs).split() == words


def test_bad_input_gives_clear_errors(tmp_path):
    with pytest.raises(CorpusError, match="empty"):
        encode_corpus([[], []], tmp_path / "a")
    with pytest.raises(EmptyVocabularyError, match="min_count=5"):
        encode_corpus([["rare", "words"]], tmp_path / "b")
    with pytest.raises(TypeError, match="re-iterable"):
        train(iter([["a", "b"]]), min_count=1)
    with pytest.raises(ValueError, match="nothing to train with: negative=0"):
        train([["a", "b"]], min_count=1, negative=0)
    with pytest.raises(TypeError, match="unknown word2vec parameter"):
        train([["a", "b"]], min_count=1, dimensions=3)


def test_cli_errors_name_the_problem(tmp_path):
    runner = CliRunner()
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    rare = tmp_path / "rare.txt"
    rare.write_text("one two three\n")
    table = tmp_path / "table.csv"
    table.write_text("a,b\n")
    cases = {
        str(empty): "empty",
        str(rare): "vocabulary is empty",
        str(table): "unknown corpus type",
        str(tmp_path / "missing.txt"): "not found",
    }
    for corpus, message in cases.items():
        result = runner.invoke(app, ["train", corpus, "--out", str(tmp_path / "out")])
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert "Traceback" not in result.output


def test_killed_cli_run_resumes_to_the_same_vectors(tmp_path):
    """Kill `upvote embed train` after its first epoch checkpoint, resume it, and get exactly the
    vectors of an uninterrupted run (one thread, fixed seed)."""
    text = tmp_path / "corpus.txt"
    docs = planted_corpus(n_docs=20_000, length=25)
    text.write_text("\n".join(" ".join(d) for d in docs))
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "upvote", "embed", "train", str(text), "--out", str(out),
        "--epochs", "3", "--threads", "1", "--min-count", "1", "--sample", "0",
        "--dim", "32", "--seed", "5",
    ]  # fmt: skip
    env = {**os.environ, "COLUMNS": "100"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.npz").exists():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    epochs_done = load_checkpoint(out)[1]["epochs_done"]
    assert epochs_done < 3, "the run finished before it could be killed: make the corpus larger"
    assert not (out / "vectors.txt").exists()

    resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(out)[1]["epochs_done"] == 3
    params = Word2VecParams(**json.loads((out / "params.json").read_text()))
    reference = train(EncodedCorpus.open(out / "corpus"), params)
    finished = KeyedVectors.load(out / "vectors.npz")
    assert finished.index_to_key == reference.index_to_key
    assert np.array_equal(finished.vectors, reference.vectors)


def test_train_reads_a_gzipped_text_file_with_the_word_tokenizer(tmp_path):
    path = tmp_path / "corpus.txt.gz"
    lines = [" ".join(doc).upper() + " 42" for doc in planted_corpus(n_docs=300)]
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines))
    kv = train(path, epochs=3, **FAST)
    assert "four" in kv and "two" in kv  # digits spelled out, text8 style
    assert all(key == key.lower() for key in kv.index_to_key)
    assert group_precision(kv) > 0.8


def test_cli_trains_sentencepiece_on_a_parquet_column(tmp_path):
    import pandas as pd
    from gensim.models import KeyedVectors as GensimKeyedVectors

    titles = [" ".join(doc[:8]) for doc in planted_corpus(n_docs=400)]
    pd.DataFrame({"id": range(len(titles)), "headline": titles}).to_parquet(tmp_path / "t.parquet")
    out = tmp_path / "out"
    args = [
        "train", str(tmp_path / "t.parquet"), "--column", "headline", "--tokenizer",
        "sentencepiece", "--vocab-size", "60", "--min-count", "1", "--dim", "8", "--out", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "tokenizer").is_dir()
    vectors = GensimKeyedVectors.load_word2vec_format(str(out / "vectors.txt"))
    assert vectors.vector_size == 8 and any(key.startswith("▁") for key in vectors.index_to_key)
    bad = CliRunner().invoke(app, [*args[:3], "nope", *args[4:]])
    assert bad.exit_code == 1 and "no column 'nope'" in bad.output and "headline" in bad.output


def test_word_counting_prunes_rare_words_in_bounded_memory():
    from upvote.embeddings.word_table import WordTable, tokens_of

    docs = [["common", f"rare{i}"] for i in range(50)] + [["common", "twice", "twice"]]
    table = WordTable(prune_at=10)
    held = []
    for doc in docs:
        table.add(tokens_of(doc, [len(doc)]))
        held.append(table.n_words)
    assert max(held) <= 11  # never more than prune_at distinct words held after a pruning
    counts = dict(zip(table.words(np.arange(table.n_words)), table.counts.tolist(), strict=False))
    assert counts["common"] >= 40 and counts["twice"] == 2  # frequent words survive pruning


def test_documents_longer_than_a_shard_are_kept_whole(tmp_path):
    docs = [["a", "b"] * 10, ["a"], ["b", "a", "b"]]
    corpus = encode_corpus(docs, tmp_path / "enc", min_count=1, shard_tokens=8)
    tokens = np.concatenate(list(corpus.shards()))
    assert (tokens == -1).sum() == 3 and (tokens >= 0).sum() == 24


def test_cli_trains_on_an_already_encoded_corpus(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(doc) for doc in planted_corpus(n_docs=200)))
    first, second = tmp_path / "first", tmp_path / "second"
    common = ["--min-count", "1", "--dim", "8", "--threads", "1"]
    assert (
        CliRunner().invoke(app, ["train", str(corpus), "--out", str(first), *common]).exit_code == 0
    )
    result = CliRunner().invoke(
        app, ["train", str(first / "corpus"), "--out", str(second), *common]
    )
    assert result.exit_code == 0, result.output
    assert not (second / "corpus").exists()  # nothing encoded again
    one = KeyedVectors.load(first / "vectors.npz")
    two = KeyedVectors.load(second / "vectors.npz")
    assert one.index_to_key == two.index_to_key and np.array_equal(one.vectors, two.vectors)


def test_cli_trains_with_hierarchical_softmax_only(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(doc) for doc in planted_corpus()))
    out = tmp_path / "out"
    options = ["--hs", "--negative", "0", "--min-count", "1", "--window", "3", "--epochs", "4"]
    result = CliRunner().invoke(app, ["train", str(corpus), "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "params.json").read_text())["hs"] is True
    assert group_precision(KeyedVectors.load_word2vec_format(out / "vectors.txt")) > 0.9


def test_binary_files_named_like_text_are_refused_naming_the_file(tmp_path):
    """A binary file named .txt or .gz used to train on junk and exit 0."""
    rng = np.random.default_rng(0)
    junk = rng.integers(0, 256, size=200_000, dtype=np.uint8).tobytes()
    binary_txt = tmp_path / "model.txt"
    binary_txt.write_bytes(b"%PDF-1.4 " + junk)
    binary_gz = tmp_path / "weights.txt.gz"
    with gzip.open(binary_gz, "wb") as f:
        f.write(junk)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(("caf\xe9 " * 1000).encode("latin-1"))
    for path in (binary_txt, binary_gz, latin1):
        out = tmp_path / f"out-{path.name}"
        args = ["train", str(path), "--out", str(out), "--min-count", "1"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert str(path) in lines[0] and "not a text corpus" in lines[0]
        assert not (out / "vectors.txt").exists()
    with pytest.raises(CorpusError, match=r"weights\.txt\.gz: not a text corpus"):
        iter_documents(binary_gz)


def test_corpus_format_is_sniffed_from_content_not_name(tmp_path):
    """text8 has no extension; a gzip file may lack .gz and a .gz file may be plain text."""
    docs = planted_corpus(n_docs=300)
    text = "\n".join(" ".join(doc) for doc in docs)
    plain = tmp_path / "text8"
    plain.write_text(text)
    gzipped = tmp_path / "corpus.bin"
    gzipped.write_bytes(gzip.compress(text.encode()))
    mislabelled = tmp_path / "plain.gz"
    mislabelled.write_text(text)
    for path in (plain, gzipped, mislabelled):
        assert [d.split() for d in iter_documents(path)] == docs, path
    out = tmp_path / "out"
    options = ["--min-count", "1", "--dim", "8", "--threads", "1"]
    result = CliRunner().invoke(app, ["train", str(plain), "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    assert len(KeyedVectors.load(out / "vectors.npz")) == GROUPS * PER_GROUP


def one_line_error(result, *words: str) -> str:
    """The run failed with a handled `Error: ...` line naming `words`, and no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def planted_text(tmp_path):
    path = tmp_path / "planted.txt"
    path.write_text("\n".join(" ".join(doc) for doc in planted_corpus(n_docs=200)))
    return path


def test_a_model_too_big_for_memory_is_refused_before_allocating(planted_text, tmp_path):
    """`--dim 100000000` used to die in numpy with a MemoryError traceback."""
    from upvote.embeddings.engines.common import memory_bytes

    words = GROUPS * PER_GROUP
    dim = max(100_000_000, 4 * memory_bytes() // (words * 4))  # one matrix alone: 4x the memory
    out = tmp_path / "runs" / "big"
    args = ["train", str(planted_text), "--out", str(out), "--min-count", "1", "--dim", str(dim)]
    result = CliRunner().invoke(app, args)
    line = one_line_error(result, f"--dim {dim}", "memory", f"{words} words")
    assert "x 2 matrices" in line
    assert not (tmp_path / "runs").exists()  # what the failed run created is gone


def test_failed_run_removes_only_what_it_created(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    out = tmp_path / "new" / "out"
    one_line_error(CliRunner().invoke(app, ["train", str(empty), "--out", str(out)]), "empty")
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.md").write_text("mine")
    one_line_error(CliRunner().invoke(app, ["train", str(empty), "--out", str(kept)]), "empty")
    assert [p.name for p in kept.iterdir()] == ["notes.md"]


def test_absurd_alpha_and_negative_warn_naming_the_option(planted_text, tmp_path):
    common = ["--min-count", "1", "--dim", "8", "--threads", "1"]
    result = CliRunner().invoke(
        app, ["train", str(planted_text), "--out", str(tmp_path / "a"), *common, "--alpha", "50"]
    )
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warnings) == 1 and "--alpha 50" in warnings[0], result.stderr
    # more noise words than the vocabulary has words: impossible, refused before training
    out = tmp_path / "n"
    result = CliRunner().invoke(
        app, ["train", str(planted_text), "--out", str(out), *common, "--negative", "100000"]
    )
    assert "Warning: --negative 100000" in result.stderr
    one_line_error(result, "--negative 100000", f"vocabulary has words ({GROUPS * PER_GROUP})")
    assert not out.exists()
    # large but possible: a warning, and training runs
    big = tmp_path / "big.txt"
    words = [word(group, i) for group in range(GROUPS) for i in range(PER_GROUP)]
    words += [w + "z" for w in words]  # 96 words: letters only, as the word tokenizer keeps them
    big.write_text("\n".join(" ".join(words[(i + j) % 96] for j in range(20)) for i in range(300)))
    result = CliRunner().invoke(
        app, ["train", str(big), "--out", str(tmp_path / "b"), *common, "--negative", "60"]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.count("Warning: --negative 60") == 1
    assert (tmp_path / "b" / "vectors.npz").exists()


def test_on_checkpoint_sees_each_epochs_checkpoint_once_and_whole(tmp_path):
    seen = []

    def copy_out(path):
        weights, state = load_checkpoint(path.parent)
        seen.append((path.name, state["epochs_done"], weights["syn0"].copy()))

    vectors = train(planted_corpus(200), vector_size=8, epochs=3, threads=1,
                    checkpoint_dir=tmp_path, on_checkpoint=copy_out)  # fmt: skip
    assert [(name, epoch) for name, epoch, _ in seen] == [("checkpoint.npz", e) for e in (1, 2, 3)]
    assert np.array_equal(seen[-1][2], vectors.vectors)  # the last one is the result
    assert not np.array_equal(seen[0][2], seen[-1][2])
