"""Distributed word2vec through the real torchrun CLI on gloo (CPU): 2 ranks learn what 1 learns,
each rank holds half the parameters, and a killed job resumes to the same vectors."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_torch_engine import PARAMS, neighbour_purity, planted_documents

from upvote.embeddings.corpus import encode_corpus
from upvote.embeddings.distributed import Layout, check_layout
from upvote.embeddings.torch_engine import train_torch
from upvote.embeddings.vectors import KeyedVectors

TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
EPOCHS = 3
BATCH_WORDS = 1024

# What `upvote embed train` does under torchrun, reduced to the call under test.
WORKER = """
import json, os, resource, signal, sys
from upvote.embeddings.corpus import EncodedCorpus
from upvote.embeddings.distributed import train_distributed
from upvote.embeddings.params import Word2VecParams

corpus_dir, out_dir, model_parallel, resume, kill_after_words = sys.argv[1:6]
corpus = EncodedCorpus.open(corpus_dir)
params = Word2VecParams(**json.loads(os.environ["W2V_PARAMS"]))
done = 0

def progress(words, loss):  # rank 1 kills itself with SIGKILL once it is past kill_after_words
    global done
    done += words
    if os.environ["RANK"] == "1" and done > int(kill_after_words) > 0:
        os.kill(os.getpid(), signal.SIGKILL)

stats = train_distributed(
    corpus, params, out_dir, progress, model_parallel=int(model_parallel),
    resume=resume == "1", batch_words=int(os.environ["W2V_BATCH_WORDS"]),
)
stats["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(os.path.join(out_dir, f"stats-rank{stats['rank']}.json"), "w") as f:
    json.dump(stats, f)
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return encode_corpus(
        planted_documents(), tmp_path_factory.mktemp("corpus"), min_count=1, shard_tokens=8000
    )


def launch(corpus, out: Path, nproc: int, model_parallel: int, resume=False, kill_after_words=0):
    script = out.parent / "worker.py"
    script.write_text(WORKER)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "W2V_PARAMS": json.dumps(replace(PARAMS, epochs=EPOCHS).to_dict()),
        "W2V_BATCH_WORDS": str(BATCH_WORDS),
    }
    cmd = [TORCHRUN, "--standalone", f"--nproc-per-node={nproc}", str(script)]
    cmd += [str(corpus.directory), str(out), str(model_parallel), "1" if resume else "0"]
    cmd += [str(kill_after_words)]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )


def finish(proc: subprocess.Popen) -> None:
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output.decode()[-3000:]


def stats(out: Path, rank: int) -> dict:
    return json.loads((out / f"stats-rank{rank}.json").read_text())


@pytest.fixture(scope="module")
def column_parallel_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("mp2") / "out"
    finish(launch(corpus, out, nproc=2, model_parallel=2))
    return out


@pytest.mark.slow
def test_two_column_ranks_learn_what_one_process_learns(corpus, column_parallel_run):
    single, _ = train_torch(corpus, replace(PARAMS, epochs=EPOCHS), batch_words=BATCH_WORDS)
    kv = KeyedVectors.load_word2vec_format(column_parallel_run / "vectors.txt")
    assert kv.index_to_key == corpus.vocab.words and kv.vector_size == PARAMS.vector_size
    one = neighbour_purity(single, kv.index_to_key)
    two = neighbour_purity(kv.vectors, kv.index_to_key)
    assert two > 0.9 and abs(one - two) < 0.05, (one, two)
    # Each rank holds half of both matrices: 2 x V x (D / 2) float32.
    full = 2 * len(corpus.vocab) * PARAMS.vector_size * 4
    for rank in (0, 1):
        s = stats(column_parallel_run, rank)
        assert s["parameter_bytes"] == full // 2
        assert s["columns"] == [rank * 8, rank * 8 + 8]


@pytest.mark.slow
def test_data_parallel_replicas_learn(corpus, tmp_path):
    out = tmp_path / "out"
    finish(launch(corpus, out, nproc=2, model_parallel=1))
    kv = KeyedVectors.load_word2vec_format(out / "vectors.txt")
    assert neighbour_purity(kv.vectors, kv.index_to_key) > 0.9
    # Each replica trained about half the corpus words per epoch, and holds the whole model.
    words = [stats(out, r)["words"] for r in (0, 1)]
    assert abs(words[0] - words[1]) < 0.1 * sum(words)
    assert sum(words) == corpus.n_tokens * EPOCHS
    assert stats(out, 0)["parameter_bytes"] == 2 * len(corpus.vocab) * PARAMS.vector_size * 4


@pytest.mark.slow
def test_killed_job_resumes_to_the_same_vectors(corpus, column_parallel_run, tmp_path):
    out = tmp_path / "out"
    # Rank 1 is SIGKILLed early in epoch 2; torchrun then stops rank 0 and fails the job.
    proc = launch(corpus, out, nproc=2, model_parallel=2, kill_after_words=corpus.n_tokens + 1)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, output.decode()[-3000:]
    checkpoints = sorted(p.name for p in (out / "checkpoints").glob("*.pt"))
    assert checkpoints == ["rank0000-epoch0001.pt", "rank0001-epoch0001.pt"]
    assert not (out / "vectors.txt").exists()
    finish(launch(corpus, out, nproc=2, model_parallel=2, resume=True))
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
