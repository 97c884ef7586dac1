"""KeyedVectors: lookups, neighbours, analogies, and files that gensim reads unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from gensim.models import KeyedVectors as GensimKeyedVectors

from upvote.embeddings import KeyedVectors


@pytest.fixture
def kv() -> KeyedVectors:
    rng = np.random.default_rng(0)
    keys = ["the", "café", "king", "queen", "man", "woman", *[f"w{i}" for i in range(50)]]
    vectors = rng.normal(size=(len(keys), 16)).astype(np.float32)
    vectors[0] = [1e-8, -3.5e7, 0.1, *[1 / 3] * 13]  # awkward floats must survive the text format
    return KeyedVectors(keys, vectors, counts=np.arange(len(keys), 0, -1))


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_gensim_reads_our_files_unchanged(kv, tmp_path, binary):
    path = tmp_path / ("v.bin" if binary else "v.txt")
    kv.save_word2vec_format(path, binary=binary)
    theirs = GensimKeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert theirs.index_to_key == kv.index_to_key
    assert np.array_equal(theirs.vectors, kv.vectors)
    ours = KeyedVectors.load_word2vec_format(path, binary=binary)
    assert ours.index_to_key == kv.index_to_key
    assert np.array_equal(ours.vectors, kv.vectors)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_we_read_gensim_files(kv, tmp_path, binary):
    theirs = GensimKeyedVectors(vector_size=kv.vector_size)
    theirs.add_vectors(kv.index_to_key, kv.vectors)
    path = tmp_path / "g.w2v"
    theirs.save_word2vec_format(str(path), binary=binary)
    ours = KeyedVectors.load_word2vec_format(path, binary=binary)
    assert ours.index_to_key == kv.index_to_key
    assert np.allclose(ours.vectors, kv.vectors, rtol=1e-6, atol=0)


def test_native_format_round_trip(kv, tmp_path):
    kv.save(tmp_path / "v.npz")
    loaded = KeyedVectors.load(tmp_path / "v.npz")
    assert loaded.index_to_key == kv.index_to_key
    assert np.array_equal(loaded.vectors, kv.vectors)
    assert np.array_equal(loaded.counts, kv.counts)


def test_most_similar_matches_gensim_and_excludes_the_query(kv):
    theirs = GensimKeyedVectors(vector_size=kv.vector_size)
    theirs.add_vectors(kv.index_to_key, kv.vectors)
    for positive, negative in [(["king"], []), (["king", "woman"], ["man"]), ([], ["w3"])]:
        ours = kv.most_similar(positive=positive, negative=negative, topn=5)
        expected = theirs.most_similar(positive=positive, negative=negative, topn=5)
        assert [w for w, _ in ours] == [w for w, _ in expected]
        assert np.allclose([s for _, s in ours], [s for _, s in expected], atol=1e-5)
        assert not {w for w, _ in ours} & set(positive + negative)
    ours = kv.most_similar_cosmul(positive=["king", "woman"], negative=["man"], topn=5)
    expected = theirs.most_similar_cosmul(positive=["king", "woman"], negative=["man"], topn=5)
    assert [w for w, _ in ours] == [w for w, _ in expected]


def test_lookups(kv):
    assert "king" in kv and "emperor" not in kv
    assert np.array_equal(kv["queen"], kv.vectors[3])
    assert kv.similarity("king", "queen") == pytest.approx(kv.similarity("queen", "king"))
    assert kv.similarity("man", "man") == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(KeyError, match="emperor"):
        kv["emperor"]
