"""The Triton engine (--device cuda) without a GPU: it compiles for an H100, and under Triton's
CPU interpreter (programs run one after another: exact per-word SGD) it learns planted structure,
its loss falls, and a killed run resumes to the same vectors.

The interpreter is chosen when triton is imported (TRITON_INTERPRET=1), so training runs in a
subprocess: this file run as a script (see the bottom).
"""

import json
import os
import string
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from test_torch_engine import neighbour_purity

from upvote.embeddings import Word2VecParams, train

LETTERS = string.ascii_lowercase
# Small enough for the interpreter (~5 ms per word): 4 clusters of 6 words, 600 words, 3 epochs.
# The CPU engine reaches purity 1.0 on it for seeds 0-2, and 0.21-0.24 with alpha 1e-5.
PARAMS = Word2VecParams(
    vector_size=16, window=3, negative=5, min_count=1, sample=0, epochs=3, alpha=0.2, threads=1
)


def planted_documents(n_docs: int = 60, clusters: int = 4, seed: int = 0) -> list[list[str]]:
    """Each 10-word document uses the 6 words of one cluster ("aqb": cluster a, word b)."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n_docs):
        c = rng.integers(clusters)
        docs.append([LETTERS[c] + "q" + LETTERS[w] for w in rng.integers(6, size=10)])
    return docs


def test_kernels_compile_for_an_h100():
    """Compiled to a cubin for sm_90 with the ptxas shipped in the triton wheel: no GPU needed."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from upvote.embeddings.engines.gpu import window_kernel

    ids, floats = "*i32", "*fp32"
    signature = {
        "tokens": ids, "lo": ids, "hi": ids, "noise": ids, "n_tokens": "i32",
        "syn0": floats, "syn1neg": floats, "losses": floats, "examples": floats,
        "span": "i32", "window": "i32", "negative": "i32",
        "alpha_start": "fp32", "alpha_step": "fp32",
    }  # fmt: skip
    for sg in (True, False):
        blocks = {"DIM": 100, "BLOCK_D": 128, "BLOCK_C": 16, "BLOCK_T": 16, "SG": sg}
        constexprs = blocks | {"CBOW_MEAN": True}
        signature |= dict.fromkeys(constexprs, "constexpr")
        source = ASTSource(fn=window_kernel, signature=signature, constexprs=constexprs)
        kernel = triton.compile(source, target=GPUTarget("cuda", 90, 32))
        assert len(kernel.asm["cubin"]) > 1000
        assert "red.global" in kernel.asm["ptx"]  # the in-place (atomic) row updates


def test_draws_keep_windows_inside_documents(tmp_path):
    """The per-chunk draws the kernel reads: windows inside a document, noise from the vocab."""
    from upvote.embeddings.corpus import encode_corpus
    from upvote.embeddings.engines.gpu import Kernel

    corpus = encode_corpus(planted_documents(n_docs=200), tmp_path, min_count=1)
    params = replace(PARAMS, window=4, sample=1e-2)
    kernel = Kernel(corpus, params, torch.device("cpu"))
    chunk = torch.from_numpy(np.concatenate(list(corpus.shards())).astype(np.int64))
    tokens, lo, hi, noise = kernel.prepare(chunk, torch.Generator().manual_seed(0))
    assert 0 < (tokens >= 0).sum() < (chunk >= 0).sum()  # sub-sampled, separators kept
    assert (tokens < 0).sum() == (chunk < 0).sum()
    for pos in range(len(tokens)):
        a, b = int(lo[pos]), int(hi[pos])
        if tokens[pos] < 0:
            assert a == b  # a separator is no centre
            continue
        assert a <= pos < b and b - a <= 2 * params.window + 1
        assert (tokens[a:b] >= 0).all()  # no context across a document boundary
        left, right = pos - a, b - 1 - pos  # reach on each side: equal unless a side is cut
        cut_left = a == 0 or tokens[a - 1] < 0
        cut_right = b == len(tokens) or tokens[b] < 0
        assert (left == right) or (cut_left and left < right) or (cut_right and right < left)
    assert noise.shape == (len(tokens), params.negative)
    assert int(noise.min()) >= 0 and int(noise.max()) < len(corpus.vocab)


def run_interpreted(task: str, tmp_path: Path) -> dict:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run(
        [sys.executable, __file__, task, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("sg", [True, False], ids=["skip-gram", "cbow"])
def test_planted_structure_is_recovered_and_loss_falls(sg, tmp_path):
    result = run_interpreted("sg" if sg else "cbow", tmp_path)
    assert result["purity"] > 0.9
    assert result["losses"][-1] < 0.8 * result["losses"][0]


def test_killed_run_resumes_to_the_same_vectors(tmp_path):
    result = run_interpreted("resume", tmp_path)
    assert result["died"]
    assert result["max_difference"] == 0.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_device_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"--device cuda .* no CUDA GPU"):
        train(planted_documents(5), replace(PARAMS, device="cuda"))


def _interpreted(task: str, workdir: Path) -> dict:
    """Runs in the subprocess, with TRITON_INTERPRET=1."""
    from upvote.embeddings.corpus import encode_corpus
    from upvote.embeddings.engines.gpu import train_triton

    corpus = encode_corpus(planted_documents(), workdir / "corpus", min_count=1)
    if task in ("sg", "cbow"):
        losses: list[float] = []
        params = replace(PARAMS, sg=task == "sg")
        syn0, _ = train_triton(corpus, params, lambda words, loss: losses.append(loss))
        return {"purity": neighbour_purity(syn0, corpus.vocab.words), "losses": losses}
    params = replace(PARAMS, epochs=2)
    whole, _ = train_triton(corpus, params)
    checkpoint = workdir / "checkpoint.pt"
    calls = []

    def die_in_epoch_two(words: int, loss: float) -> None:
        calls.append(words)
        if len(calls) == 2:  # one launch per epoch here: the second is epoch two
            raise KeyboardInterrupt

    died = False
    try:
        train_triton(corpus, params, die_in_epoch_two, checkpoint=checkpoint)
    except KeyboardInterrupt:
        died = True
    resumed, _ = train_triton(corpus, params, checkpoint=checkpoint)
    return {"died": died, "max_difference": float(np.abs(resumed - whole).max())}


if __name__ == "__main__":
    print(json.dumps(_interpreted(sys.argv[1], Path(sys.argv[2]))))
