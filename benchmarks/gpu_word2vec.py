"""The Triton engine on a CUDA GPU: words/s per concurrency, vectors scored for quality afterwards.

The GPU machine has torch, triton and numpy, and a 64 MiB limit on what travels to it: this
script's `train` step needs numba besides (the corpus is encoded by numba kernels), not scipy or
gensim, and quality is scored back
here, where the evaluation sets are. Same corpus and settings as word2vec_vs_gensim.py (dim 100,
window 5, negative 5, sample 1e-3, min_count 5, alpha 0.025 SG / 0.05 CBOW).

    mkdir -p bench-data && cp ../shared/data/text/*.txt.gz bench-data/corpus.txt.gz  # git-ignored
    # on the GPU machine (run tool, carry ["bench-data"]):
    PYTHONPATH=src python benchmarks/gpu_word2vec.py train bench-data/corpus.txt.gz \\
        --model sg --programs 2048 8192 32768 --out $OUT
    # back here, on the fetched folder:
    .venv/bin/python benchmarks/gpu_word2vec.py evaluate FETCHED_DIR

Only the training call is timed (after a warm-up that compiles the kernel); words/s = corpus
words x epochs / seconds. Each run writes `<model>-<programs>.npz` (float16 vectors, ~14 MB).
gensim's time and quality on the same machine are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from upvote.embeddings.corpus import encode_corpus, iter_documents
from upvote.embeddings.params import Word2VecParams
from upvote.embeddings.vectors import KeyedVectors


def train(args: argparse.Namespace) -> None:
    from upvote.embeddings.engines import gpu

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gpu-w2v-") as tmp:
        t0 = time.perf_counter()
        corpus = encode_corpus(iter_documents(args.corpus), Path(tmp) / "encoded", min_count=5)
        words = int(sum(int((np.asarray(s) >= 0).sum()) for s in corpus.shards()))
        device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA"
        seconds = time.perf_counter() - t0
        print(f"corpus: {words:,} words, vocabulary {len(corpus.vocab):,}, encoded in "
              f"{seconds:.0f} s; {device}; {platform.node()}", flush=True)  # fmt: skip
        warm_up = [["warm", "up", "the", "kernel"]] * 50
        tiny = encode_corpus(warm_up, Path(tmp) / "tiny", min_count=1)
        for model in args.model:
            params = Word2VecParams(sg=model == "sg", epochs=args.epochs, device=args.device)
            gpu.train_triton(tiny, replace(params, epochs=1))  # compile
            for programs in args.programs:
                if args.device == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                syn0, _ = gpu.train_triton(corpus, params, programs=programs)
                seconds = time.perf_counter() - t0  # train_triton ends with a copy to the host
                vectors = syn0.astype(np.float16)
                words_array = np.array(corpus.vocab.words)
                np.savez(args.out / f"{model}-{programs}.npz", words=words_array, vectors=vectors)
                row = {"model": model, "epochs": args.epochs, "programs": programs,
                       "train_s": round(seconds, 2),
                       "words_per_s": round(words * args.epochs / seconds)}  # fmt: skip
                print(json.dumps(row), flush=True)


def evaluate(args: argparse.Namespace) -> None:
    from text8 import quality  # the same scoring as the gensim comparison

    for path in sorted(args.folder.glob("*.npz")):
        with np.load(path) as data:
            kv = KeyedVectors(data["words"].tolist(), data["vectors"].astype(np.float32))
        print(json.dumps({"run": path.stem, **quality(kv)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    run = steps.add_parser("train", help="train and time (the GPU machine)")
    run.add_argument("corpus", type=Path)
    run.add_argument("--model", nargs="+", choices=["sg", "cbow"], default=["sg"])
    run.add_argument("--epochs", type=int, default=1)
    run.add_argument("--programs", type=int, nargs="+", default=[8192],
                     help="concurrent Triton programs per launch (the Hogwild width)")  # fmt: skip
    run.add_argument("--device", default="cuda", help="cpu only with TRITON_INTERPRET=1")
    run.add_argument("--out", type=Path, required=True)
    score = steps.add_parser("evaluate", help="score the vectors (here: needs ../shared/data)")
    score.add_argument("folder", type=Path)
    args = parser.parse_args()
    train(args) if args.step == "train" else evaluate(args)


if __name__ == "__main__":
    main()
