"""The batched PyTorch word2vec engine (torch_engine.py) on CPU: it learns, it is exact where it
must be (windows, documents, duplicate rows), it is deterministic and resumable, and it refuses a
missing GPU clearly."""

import string
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch

from upvote.embeddings.corpus import encode_corpus
from upvote.embeddings.params import Word2VecParams
from upvote.embeddings.torch_engine import (
    ROW_CAP,
    Sampler,
    _add_capped,
    resolve_device,
    train_arrays,
    train_torch,
)
from upvote.embeddings.vocab import Vocab

CLUSTERS, PER_CLUSTER = 12, 8
LETTERS = string.ascii_lowercase
PARAMS = Word2VecParams(vector_size=16, window=3, negative=5, min_count=1, epochs=3, threads=1)


def planted_documents(n_docs: int = 1500, length: int = 16, seed: int = 0) -> list[list[str]]:
    """Each document uses the words of one cluster only: words of a cluster share all contexts.
    Words are letters only ("aqb": cluster a, word b), so the text8 word tokenizer keeps them."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n_docs):
        c = rng.integers(CLUSTERS)
        docs.append([LETTERS[c] + "q" + LETTERS[w] for w in rng.integers(PER_CLUSTER, size=length)])
    return docs


def planted_arrays(docs: list[list[str]]) -> tuple[list[np.ndarray], Vocab]:
    vocab = Vocab.from_counter(Counter(w for d in docs for w in d), min_count=1)
    ids = []
    for d in docs:
        ids += [vocab.index[w] for w in d] + [-1]
    return [np.array(ids, dtype=np.int32)], vocab


def neighbour_purity(vectors: np.ndarray, words: list[str], topn: int = 5) -> float:
    """Share of each word's topn cosine neighbours that come from its own cluster."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    cluster = np.array([w[0] for w in words])
    top = np.argsort(-sims, axis=1)[:, :topn]
    return float((cluster[top] == cluster[:, None]).mean())


@pytest.fixture(scope="module")
def planted():
    return planted_arrays(planted_documents())


@pytest.mark.parametrize("sg", [True, False], ids=["skipgram", "cbow"])
def test_planted_structure_is_recovered_and_loss_falls(planted, sg):
    shards, vocab = planted
    losses: list[float] = []
    syn0, syn1 = train_arrays(
        shards, vocab, replace(PARAMS, sg=sg), lambda words, loss: losses.append(loss), 1024
    )
    assert syn0.dtype == np.float32 and syn0.shape == (len(vocab), 16) == syn1.shape
    assert neighbour_purity(syn0, vocab.words) > 0.9
    per_epoch = len(losses) // PARAMS.epochs
    assert losses[per_epoch - 1] > losses[-1]  # mean loss of epoch 1 > mean loss of epoch 3
    random = np.random.default_rng(0).normal(size=syn0.shape)
    assert neighbour_purity(random, vocab.words) < 0.3  # the metric itself can fail


def test_pairs_stay_inside_window_and_document():
    """With unique words, ids are positions: every pair must be within `window` in one document."""
    n = 60
    vocab = Vocab([f"w{i}" for i in range(n)], np.ones(n, dtype=np.int64))
    params = replace(PARAMS, sample=0, window=4)
    tokens = torch.tensor([*range(25), -1, *range(25, n)])
    batch = Sampler(vocab, params, torch.device("cpu"), seed=1).batch(tokens)
    centre = batch.targets[batch.pair_centre, 0]
    context = batch.inputs
    gap = (centre - context).abs()
    assert gap.min() >= 1 and gap.max() <= 4
    assert not ((centre < 25) ^ (context < 25)).any()  # no pair crosses the document break
    assert batch.targets.shape[1] == 1 + params.negative
    # Every word has a context, so every word is a centre exactly once.
    assert sorted(batch.targets[:, 0].tolist()) == list(range(n))


def test_a_row_moves_at_most_row_cap_updates_per_step():
    weight = torch.zeros(3, 2)
    many = int(ROW_CAP) * 4
    rows = torch.tensor([1] * many + [2, 2])
    updates = torch.ones(many + 2, 2)
    _add_capped(weight, rows, updates)
    # Row 1: 4 x ROW_CAP updates of 1 are scaled to ROW_CAP; row 2: 2 updates are summed as is.
    assert weight.tolist() == [[0.0, 0.0], [ROW_CAP, ROW_CAP], [2.0, 2.0]]


def test_fixed_seed_is_deterministic_and_seed_matters(planted):
    shards, vocab = planted
    params = replace(PARAMS, epochs=1)
    a, _ = train_arrays(shards, vocab, params, batch_words=1024)
    b, _ = train_arrays(shards, vocab, params, batch_words=1024)
    c, _ = train_arrays(shards, vocab, replace(params, seed=1), batch_words=1024)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_killed_run_resumes_to_the_same_vectors(planted, tmp_path):
    shards, vocab = planted
    params = replace(PARAMS, epochs=2)
    whole, _ = train_arrays(shards, vocab, params, batch_words=1024)
    checkpoint = tmp_path / "torch.pt"
    words_per_epoch = int((shards[0] >= 0).sum())
    seen = 0

    def die_in_epoch_two(words: int, loss: float) -> None:
        nonlocal seen
        seen += words
        if seen > words_per_epoch:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_arrays(shards, vocab, params, die_in_epoch_two, 1024, checkpoint)
    assert checkpoint.exists()
    resumed, _ = train_arrays(shards, vocab, params, batch_words=1024, checkpoint=checkpoint)
    assert np.array_equal(whole, resumed)


def test_train_torch_reads_an_encoded_corpus(tmp_path):
    corpus = encode_corpus(planted_documents(600), tmp_path / "enc", min_count=1, shard_tokens=3000)
    assert len(corpus.shard_paths()) > 1
    syn0, _ = train_torch(corpus, replace(PARAMS, epochs=4), batch_words=1024)
    assert neighbour_purity(syn0, corpus.vocab.words) > 0.8


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"--device cuda .* no CUDA GPU"):
        resolve_device("cuda")
