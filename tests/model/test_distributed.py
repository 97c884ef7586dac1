"""Distributed word2vec through the real `torchrun ... -m upvote embed train` on gloo (CPU): 2 ranks
learn what 1 learns, each rank holds half the parameters, and a killed job resumes exactly."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from test_torch_engine import PARAMS, neighbour_purity, planted_documents

from upvote.embeddings.corpus import EncodedCorpus, encode_corpus
from upvote.embeddings.distributed import Layout, check_layout
from upvote.embeddings.engines.batched import train_torch
from upvote.embeddings.engines.common import format_bytes
from upvote.embeddings.vectors import KeyedVectors

TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
EPOCHS = 3
CLI_OPTIONS = ["--dim", "16", "--window", "3", "--negative", "5", "--min-count", "1"]
CLI_OPTIONS += ["--epochs", str(EPOCHS), "--threads", "1"]

# The distributed call of `upvote embed train`, plus a way to die: once past kill_after_words,
# rank 1 SIGKILLs itself (a crashed node); torchrun then stops rank 0 and fails the job.
KILLABLE_WORKER = """
import json, os, signal, sys
from upvote.embeddings.corpus import EncodedCorpus, encode_corpus
from upvote.embeddings.distributed import train_distributed
from upvote.embeddings.params import Word2VecParams

corpus_dir, params_json, out_dir, resume, kill_after_words = sys.argv[1:6]
model_parallel, sync_every, kernels = sys.argv[6:9]
params = Word2VecParams(**json.loads(open(params_json).read()))
done = 0

def progress(words, loss):
    global done
    done += words
    if os.environ["RANK"] == "1" and done > int(kill_after_words) > 0:
        os.kill(os.getpid(), signal.SIGKILL)

train_distributed(
    EncodedCorpus.open(corpus_dir), params, out_dir, progress, model_parallel=int(model_parallel),
    resume=resume == "1", sync_every=int(sync_every), kernels=kernels,
)
"""


def torchrun(*args: str, check: bool = True, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [TORCHRUN, "--standalone", f"--nproc-per-node={nproc}", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    if check:
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc


def upvote_embed_train(text: Path, out: Path, model_parallel: int) -> Path:
    """The documented command: torchrun ... -m upvote embed train CORPUS ... --out DIR."""
    torchrun("-m", "upvote", "embed", "train", str(text), "--out", str(out), *CLI_OPTIONS,
             "--model-parallel", str(model_parallel))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def text(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "planted.txt"
    path.write_text("\n".join(" ".join(doc) for doc in planted_documents()) + "\n")
    return path


@pytest.fixture(scope="module")
def column_parallel_run(text, tmp_path_factory) -> Path:
    return upvote_embed_train(text, tmp_path_factory.mktemp("mp2") / "out", model_parallel=2)


@pytest.mark.slow
def test_two_column_ranks_learn_what_one_process_learns(column_parallel_run):
    out = column_parallel_run
    corpus = EncodedCorpus.open(out / "corpus" / "rank0")
    single, _ = train_torch(corpus, replace(PARAMS, epochs=EPOCHS))
    kv = KeyedVectors.load_word2vec_format(out / "vectors.txt")
    assert kv.index_to_key == corpus.vocab.words and kv.vector_size == PARAMS.vector_size
    one = neighbour_purity(single, kv.index_to_key)
    two = neighbour_purity(kv.vectors, kv.index_to_key)
    assert two > 0.9 and abs(one - two) < 0.05, (one, two)
    # Memory per rank halves: each rank's state holds V x D/2 of both matrices, and its slices
    # are the two halves of the gathered vectors.
    halves = []
    for rank in (0, 1):
        state = torch.load(out / "checkpoints" / f"rank{rank:04d}-epoch{EPOCHS:04d}.pt")
        assert state["syn0"].shape == state["syn1neg"].shape == (len(corpus.vocab), 8)
        halves.append(state["syn0"].numpy())
    np.testing.assert_array_equal(np.concatenate(halves, 1), kv.vectors)


@pytest.mark.slow
def test_data_parallel_replicas_learn(text, tmp_path):
    out = upvote_embed_train(text, tmp_path / "out", model_parallel=1)
    kv = KeyedVectors.load_word2vec_format(out / "vectors.txt")
    assert neighbour_purity(kv.vectors, kv.index_to_key) > 0.9


@pytest.mark.slow
def test_the_gpu_paths_torch_kernels_train_on_gloo(text, tmp_path):
    """CUDA ranks run the PyTorch sampler and step; no GPU here, so run that code on gloo: 2
    replicas x 2 column slices (the reduce hook and the averaging both on torch tensors)."""
    out = upvote_embed_train(text, tmp_path / "numba", model_parallel=2)  # encodes the corpus
    params = tmp_path / "params.json"
    params.write_text(json.dumps(replace(PARAMS, epochs=EPOCHS).to_dict()))
    worker = tmp_path / "worker.py"
    worker.write_text(KILLABLE_WORKER)
    args = [str(worker), str(out / "corpus" / "rank0"), str(params), str(tmp_path / "torch")]
    torchrun(*args, "0", "0", "2", "64", "torch", nproc=4)
    kv = KeyedVectors.load_word2vec_format(tmp_path / "torch" / "vectors.txt")
    assert neighbour_purity(kv.vectors, kv.index_to_key) > 0.9
    state = torch.load(tmp_path / "torch" / "checkpoints" / f"rank0003-epoch{EPOCHS:04d}.pt")
    assert state["syn0"].shape == (len(kv.index_to_key), PARAMS.vector_size // 2)


@pytest.mark.slow
def test_column_ranks_with_two_threads_each_learn(column_parallel_run, tmp_path):
    """Thread t of both column ranks must take the same chunks and sum its partial scores with
    its peer only (its own process group): mismatched examples would not learn, mismatched
    shapes would fail the all_reduce."""
    params = tmp_path / "params.json"
    params.write_text(json.dumps(replace(PARAMS, epochs=EPOCHS, threads=2).to_dict()))
    worker = tmp_path / "worker.py"
    worker.write_text(KILLABLE_WORKER)
    corpus = column_parallel_run / "corpus" / "rank0"
    torchrun(
        str(worker), str(corpus), str(params), str(tmp_path / "out"), "0", "0", "2", "64", "numba"
    )
    kv = KeyedVectors.load_word2vec_format(tmp_path / "out" / "vectors.txt")
    assert neighbour_purity(kv.vectors, kv.index_to_key) > 0.9


@pytest.mark.slow
def test_replicas_exchange_every_row_they_touched(tmp_path):
    """Replicas synchronised after every step send only the rows touched since the last sync: a
    Zipfian 3,000-word vocabulary leaves most rows untouched per step, and a row missed by the
    exchange would leave the replicas different after the final synchronisation. Each replica
    runs 2 Hogwild threads, so every synchronisation also pauses a thread."""
    rng = np.random.default_rng(0)
    ranks = rng.zipf(1.3, size=30_000) % 3000
    docs = [[f"w{i}" for i in ranks[s : s + 20]] for s in range(0, ranks.size, 20)]
    corpus = encode_corpus(docs, tmp_path / "corpus", min_count=1)
    params = tmp_path / "params.json"
    params.write_text(json.dumps(replace(PARAMS, epochs=1, threads=2).to_dict()))
    worker = tmp_path / "worker.py"
    worker.write_text(KILLABLE_WORKER)
    args = [str(worker), str(corpus.directory), str(params), str(tmp_path / "out"), "0", "0"]
    torchrun(*args, "1", "1", "numba")
    states = [
        torch.load(tmp_path / "out" / "checkpoints" / f"rank{r:04d}-epoch0001.pt") for r in (0, 1)
    ]
    for matrix in ("syn0", "syn1neg"):
        assert states[0][matrix].shape == (len(corpus.vocab), PARAMS.vector_size)
        torch.testing.assert_close(states[0][matrix], states[1][matrix], rtol=0, atol=0)


@pytest.mark.slow
def test_killed_job_resumes_to_the_same_vectors(column_parallel_run, tmp_path):
    """Same corpus and settings as the uninterrupted CLI run; killed in epoch 2, then resumed."""
    corpus_dir = column_parallel_run / "corpus" / "rank0"
    params = column_parallel_run / "params.json"
    worker, out = tmp_path / "worker.py", tmp_path / "out"
    worker.write_text(KILLABLE_WORKER)
    n_tokens = EncodedCorpus.open(corpus_dir).n_tokens
    args = [str(worker), str(corpus_dir), str(params), str(out)]
    killed = torchrun(*args, "0", str(n_tokens + 1), "2", "64", "numba", check=False)
    assert killed.returncode != 0
    checkpoints = sorted(p.name for p in (out / "checkpoints").glob("*.pt"))
    assert checkpoints == ["rank0000-epoch0001.pt", "rank0001-epoch0001.pt"]
    assert not (out / "vectors.txt").exists()
    torchrun(*args, "1", "0", "2", "64", "numba")
    resumed = KeyedVectors.load_word2vec_format(out / "vectors.txt").vectors
    whole = KeyedVectors.load_word2vec_format(column_parallel_run / "vectors.txt").vectors
    np.testing.assert_array_equal(resumed, whole)


def test_layout_places_ranks_in_model_groups_and_column_slices():
    # 4 ranks, 2 per model group: ranks 0,1 are replica 0; 2,3 replica 1; slices alternate.
    layouts = [Layout(rank, 4, 2) for rank in range(4)]
    assert [(x.replica, x.part) for x in layouts] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [x.columns(100) for x in layouts[:2]] == [range(0, 50), range(50, 100)]
    with pytest.raises(ValueError, match="--model-parallel 3 must divide"):
        check_layout(world=4, model_parallel=3, dim=99)
    with pytest.raises(ValueError, match="--dim 100 must be divisible"):
        check_layout(world=3, model_parallel=3, dim=100)


@pytest.mark.slow
def test_torchrun_says_what_runs_and_writes_what_one_process_writes(text, tmp_path):
    """The log names the layout, threads, memory per rank and the loss's scale; --out holds
    vectors.txt, vectors.npz and params.json as after a single-process run."""
    out = tmp_path / "out"
    options = [*CLI_OPTIONS, "--epochs", "1", "--threads", "2", "--model-parallel", "2"]
    proc = torchrun("-m", "upvote", "embed", "train", str(text), "--out", str(out), *options)
    log = proc.stdout
    words = len(EncodedCorpus.open(out / "corpus" / "rank0").vocab)
    assert "2 ranks = 1 replica(s) (data parallel) x 2 column slice(s)" in log, log
    assert "8 of 16 dims each); 2 thread(s) per rank" in log
    per_rank = words * 8 * 4 * 2
    assert f"memory per rank ~{format_bytes(per_rank)} of parameters ({words:,} words x 8" in log
    assert f"~{format_bytes(2 * per_rank)} for the 2 rank(s) on this machine" in log
    assert "a single-process run shows the mean per logistic example, about 1/6 of it" in log
    assert "per logistic example (the single process's scale)" in log
    assert log.count("distributed: ") == 3  # rank 0 only
    text_vectors = KeyedVectors.load_word2vec_format(out / "vectors.txt")
    native = KeyedVectors.load(out / "vectors.npz")
    assert native.index_to_key == text_vectors.index_to_key
    np.testing.assert_allclose(native.vectors, text_vectors.vectors, rtol=1e-5, atol=1e-6)
    assert json.loads((out / "params.json").read_text())["vector_size"] == 16
