"""The batched word2vec engine (engines/batched.py) on CPU, in both its kernels: PyTorch
(batched_torch.py, what runs on CUDA) and numba (batched_numba.py, what runs on CPU). Both learn;
they do the same arithmetic; they are exact where they must be (windows, documents, duplicate
rows), deterministic and resumable; a missing GPU is refused clearly."""

import string
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch

from upvote.embeddings.corpus import encode_corpus
from upvote.embeddings.engines.batched import train_arrays, train_torch
from upvote.embeddings.engines.batched_numba import NumbaSampler, NumbaStep
from upvote.embeddings.engines.batched_torch import Sampler, Step, add_capped
from upvote.embeddings.engines.torch_common import (
    ROW_CAP,
    chunks,
    init_vectors,
    resolve_device,
    step_words,
)
from upvote.embeddings.params import Word2VecParams
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


KERNELS = ["numba", "torch"]
CPU = torch.device("cpu")


@pytest.mark.parametrize("kernels", KERNELS)
@pytest.mark.parametrize("sg", [True, False], ids=["skipgram", "cbow"])
def test_planted_structure_is_recovered_and_loss_falls(planted, sg, kernels):
    shards, vocab = planted
    losses: list[float] = []
    syn0, syn1 = train_arrays(
        shards, vocab, replace(PARAMS, sg=sg), lambda w, loss: losses.append(loss), 1024,
        kernels=kernels,
    )  # fmt: skip
    assert syn0.dtype == np.float32 and syn0.shape == (len(vocab), 16) == syn1.shape
    assert neighbour_purity(syn0, vocab.words) > 0.9
    per_epoch = len(losses) // PARAMS.epochs
    assert losses[per_epoch - 1] > losses[-1]  # mean loss of epoch 1 > mean loss of epoch 3
    random = np.random.default_rng(0).normal(size=syn0.shape)
    assert neighbour_purity(random, vocab.words) < 0.3  # the metric itself can fail


def samplers(vocab: Vocab, params: Word2VecParams, seed: int) -> list:
    return [Sampler(vocab, params, CPU, seed), NumbaSampler(vocab, params, seed)]


@pytest.mark.parametrize("kernels", KERNELS)
def test_pairs_stay_inside_window_and_document(kernels):
    """With unique words, ids are positions: every pair must be within `window` in one document."""
    n = 60
    vocab = Vocab([f"w{i}" for i in range(n)], np.ones(n, dtype=np.int64))
    params = replace(PARAMS, sample=0, window=4)
    tokens = torch.tensor([*range(25), -1, *range(25, n)])
    numba, torch_ = samplers(vocab, params, seed=1)
    batch = (numba if kernels == "numba" else torch_).batch(tokens)
    centre = batch.targets[batch.pair_centre, 0]
    context = batch.inputs
    gap = (centre - context).abs()
    assert gap.min() >= 1 and gap.max() <= 4
    assert not ((centre < 25) ^ (context < 25)).any()  # no pair crosses the document break
    assert batch.targets.shape[1] == 1 + params.negative
    # Every word has a context, so every word is a centre exactly once.
    assert sorted(batch.targets[:, 0].tolist()) == list(range(n))


def test_both_samplers_draw_the_same_distribution(planted):
    """Same sub-sampling, window sizes and noise distribution (different generators): compared on
    ~100k words with statistics whose sampling error is far below the tolerances."""
    shards, vocab = planted
    params = replace(
        PARAMS, sample=1e-2, window=5
    )  # sub-sampling bites: ~1/12 of words are frequent
    stats = []
    for sampler in samplers(vocab, params, seed=3):
        kept = pairs = 0
        noise = np.zeros(len(vocab))
        for chunk in chunks(shards, 4096):
            batch = sampler.batch(chunk)
            kept, pairs = kept + batch.targets.shape[0], pairs + batch.inputs.shape[0]
            noise += np.bincount(batch.targets[:, 1:].reshape(-1).numpy(), minlength=len(vocab))
        stats.append((kept, pairs / kept, noise / noise.sum()))
    (kept_t, per_centre_t, noise_t), (kept_n, per_centre_n, noise_n) = stats
    assert abs(kept_n / kept_t - 1) < 0.02
    assert abs(per_centre_n / per_centre_t - 1) < 0.02
    assert 0.5 * np.abs(noise_n - noise_t).sum() < 0.02  # total variation distance
    expected = vocab.counts**params.ns_exponent
    assert 0.5 * np.abs(noise_n - expected / expected.sum()).sum() < 0.02


@pytest.mark.parametrize("sg", [True, False], ids=["skipgram", "cbow"])
def test_numba_step_does_the_torch_steps_arithmetic(planted, sg):
    """Same batches, same starting vectors: the two steps end at the same vectors and loss.
    A 96-word vocabulary and 4096-word steps make the row cap bind on most rows."""
    shards, vocab = planted
    syn0, syn1 = init_vectors(len(vocab), 16, range(16), seed=0, device=CPU)
    syn1 += torch.randn(syn1.shape, generator=torch.Generator().manual_seed(0)) * 0.1
    steps = [
        Step(syn0, syn1, sg, True),
        NumbaStep(syn0.clone(), syn1.clone(), sg, True, None, ROW_CAP),
    ]
    sampler = Sampler(vocab, replace(PARAMS, sg=sg), CPU, seed=0)
    for chunk in list(chunks(shards, 4096))[:5]:
        batch = sampler.batch(chunk)
        assert np.bincount(batch.targets.reshape(-1).numpy()).max() > 4 * ROW_CAP
        (loss_t, n_t), (loss_n, n_n) = (step(batch, 0.05) for step in steps)
        assert n_t == n_n and loss_n == pytest.approx(loss_t, rel=1e-5)
    torch.testing.assert_close(steps[1].syn0, steps[0].syn0, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(steps[1].syn1neg, steps[0].syn1neg, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(steps[0].syn1neg, syn1 * 0)  # it moved


def test_a_row_moves_at_most_row_cap_updates_per_step():
    weight = torch.zeros(3, 2)
    many = int(ROW_CAP) * 4
    rows = torch.tensor([1] * many + [2, 2])
    updates = torch.ones(many + 2, 2)
    add_capped(weight, rows, updates)
    # Row 1: 4 x ROW_CAP updates of 1 are scaled to ROW_CAP; row 2: 2 updates are summed as is.
    assert weight.tolist() == [[0.0, 0.0], [ROW_CAP, ROW_CAP], [2.0, 2.0]]


@pytest.mark.parametrize("kernels", KERNELS)
def test_fixed_seed_is_deterministic_and_seed_matters(planted, kernels):
    shards, vocab = planted
    params = replace(PARAMS, epochs=1)
    a, _ = train_arrays(shards, vocab, params, batch_words=1024, kernels=kernels)
    b, _ = train_arrays(shards, vocab, params, batch_words=1024, kernels=kernels)
    c, _ = train_arrays(shards, vocab, replace(params, seed=1), batch_words=1024, kernels=kernels)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("kernels", KERNELS)
def test_killed_run_resumes_to_the_same_vectors(planted, tmp_path, kernels):
    shards, vocab = planted
    params = replace(PARAMS, epochs=2)
    whole, _ = train_arrays(shards, vocab, params, batch_words=1024, kernels=kernels)
    checkpoint = tmp_path / "torch.pt"
    words_per_epoch = int((shards[0] >= 0).sum())
    seen = 0

    def die_in_epoch_two(words: int, loss: float) -> None:
        nonlocal seen
        seen += words
        if seen > words_per_epoch:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_arrays(shards, vocab, params, die_in_epoch_two, 1024, checkpoint, kernels)
    assert checkpoint.exists()
    resumed, _ = train_arrays(shards, vocab, params, None, 1024, checkpoint, kernels)
    assert np.array_equal(whole, resumed)


def test_hogwild_threads_learn_and_resume_only_with_as_many_threads(planted, tmp_path):
    shards, vocab = planted
    params = replace(PARAMS, threads=2, epochs=2)
    losses: list[float] = []
    checkpoint = tmp_path / "threads.pt"
    syn0, _ = train_arrays(
        shards, vocab, params, lambda w, loss: losses.append(loss), 1024, checkpoint
    )
    assert neighbour_purity(syn0, vocab.words) > 0.9
    per_epoch = len(list(chunks(shards, step_words(shards, 1024))))
    assert len(losses) == 2 * per_epoch  # every chunk trained once per epoch
    with pytest.raises(ValueError, match=r"trained by 2 thread\(s\).*--threads"):
        train_arrays(shards, vocab, replace(params, threads=1, epochs=3), checkpoint=checkpoint)


def test_train_torch_reads_an_encoded_corpus(tmp_path):
    corpus = encode_corpus(planted_documents(600), tmp_path / "enc", min_count=1, shard_tokens=3000)
    assert len(corpus.shard_paths()) > 1
    syn0, _ = train_torch(corpus, replace(PARAMS, epochs=4), batch_words=1024)
    assert neighbour_purity(syn0, corpus.vocab.words) > 0.8


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"--device cuda .* no CUDA GPU"):
        resolve_device("cuda")
