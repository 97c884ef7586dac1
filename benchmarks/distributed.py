"""Distributed word2vec under torchrun: words/s, memory per rank and quality at 1, 2, 4 ... ranks.

    .venv/bin/python benchmarks/distributed.py --max-words 2000000 --ranks 1,2,4
    .venv/bin/python benchmarks/distributed.py --layout data --ranks 1,2      # replicas, not slices
    .venv/bin/python benchmarks/distributed.py --layout mixed --ranks 4      # 2 replicas x 2 slices
    .venv/bin/python benchmarks/distributed.py --device cuda --ranks 1,2,4,8   # one GPU per rank

On the GPU machine's 16 CPU cores (the run tool; it has torch and numpy but no numba, so the ranks
run the PyTorch kernels, `--kernels torch`, ~4x slower per rank than numba):

    mkdir -p bench-data && cp ../shared/data/text/*.txt.gz bench-data/corpus.txt.gz \
        && cp -r ../shared/data/eval bench-data/eval                  # git-ignored, ~33 MB
    PYTHONPATH=src:benchmarks python benchmarks/distributed.py --corpus bench-data/corpus.txt.gz \
        --eval bench-data/eval --max-words 8000000 --layout data --ranks 1,2,4,8 --kernels torch

Every rank count is a real `torchrun --standalone --nproc-per-node N` job over the same encoded
corpus prefix, the 1-rank job (same code path, world of one) being the anchor of the same run.
--layout column: all N ranks split the dimensions (memory per rank ~ V x D / N, same examples);
--layout data: N full replicas on disjoint chunks, synchronised every --sync-every steps (256)
and per epoch; --layout mixed: N / 2 replicas of 2 column slices each.
Reported per job: training seconds (slowest rank; process start and corpus encoding excluded),
words/s = in-vocabulary tokens x epochs / seconds (~1.5% below corpus words on text8, which
word2vec_vs_gensim.py counts), scaling efficiency = speed-up / N, parameter bytes and peak RSS
per rank, analogy accuracy (30k most frequent words) and WS-353 of the gathered vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from text8 import DEFAULT_CORPUS, EVAL, quality, write_prefix

from upvote.embeddings import KeyedVectors, Word2VecParams
from upvote.embeddings.corpus import EncodedCorpus, encode_corpus, iter_documents
from upvote.embeddings.distributed import SYNC_EVERY


def worker(
    corpus_dir: str, out_dir: str, model_parallel: int, params_json: str, sync_every: int,
    kernels: str,
) -> None:  # fmt: skip
    """One rank of a torchrun job (this script re-entered by torchrun)."""
    from upvote.embeddings.distributed import train_distributed

    params = Word2VecParams(**json.loads(params_json))
    corpus = EncodedCorpus.open(corpus_dir)
    t0 = time.perf_counter()
    stats = train_distributed(
        corpus, params, out_dir, model_parallel=model_parallel, sync_every=sync_every,
        kernels=kernels,
    )  # fmt: skip
    stats["seconds"] = time.perf_counter() - t0
    stats["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    Path(out_dir, f"stats-rank{stats['rank']}.json").write_text(json.dumps(stats))


def run_job(corpus: EncodedCorpus, out: Path, ranks: int, args: argparse.Namespace, params) -> dict:
    model_parallel = {"column": ranks, "data": 1, "mixed": 2}[args.layout]
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={ranks}", __file__, "worker", str(corpus.directory), str(out),
        str(model_parallel), json.dumps(params.to_dict()), str(args.sync_every), args.kernels,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, env=env, check=True)
    stats = [json.loads(p.read_text()) for p in sorted(out.glob("stats-rank*.json"))]
    seconds = max(s["seconds"] for s in stats)
    kv = KeyedVectors.load_word2vec_format(out / "vectors.txt")
    return {
        "ranks": ranks,
        "model_parallel": model_parallel,
        "threads_per_rank": stats[0]["threads"],
        "seconds": round(seconds, 2),
        "words_per_s": round(corpus.n_tokens * params.epochs / seconds),
        "parameter_bytes_per_rank": max(s["parameter_bytes"] for s in stats),
        "max_rss_mib_per_rank": round(max(s["max_rss_bytes"] for s in stats) / 2**20, 1),
        **quality(kv, args.eval),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--max-words", type=int, default=2_000_000)
    parser.add_argument("--ranks", default="1,2,4", help="comma-separated process counts")
    parser.add_argument("--layout", choices=["column", "data", "mixed"], default="column")
    parser.add_argument("--model", choices=["sg", "cbow"], default="sg")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sync-every", type=int, default=SYNC_EVERY, help="steps between replica syncs (data)"
    )
    parser.add_argument("--kernels", choices=["numba", "torch"], default="numba")
    parser.add_argument(
        "--threads", type=int, default=1, help="Hogwild threads per rank (data layout only)"
    )
    parser.add_argument("--eval", type=Path, default=EVAL, help="the word-set directory")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    params = replace(
        Word2VecParams(), sg=args.model == "sg", epochs=args.epochs, device=args.device,
        threads=args.threads, seed=args.seed,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="upvote-dist-bench-") as tmp:
        text = Path(tmp) / "corpus.txt"
        words = write_prefix(args.corpus, args.max_words, text)
        corpus = encode_corpus(iter_documents(text), Path(tmp) / "encoded", min_count=5)
        print(f"corpus: {words:,} words, vocabulary {len(corpus.vocab):,}", flush=True)
        rows = []
        for ranks in [int(r) for r in args.ranks.split(",")]:
            out = Path(tmp) / f"out{ranks}"
            rows.append(run_job(corpus, out, ranks, args, params))
            anchor = rows[0]["words_per_s"] * rows[0]["ranks"]
            rows[-1]["efficiency"] = round(rows[-1]["words_per_s"] / anchor / ranks, 3)
            print(json.dumps(rows[-1]), flush=True)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "corpus_words": words,
        "vocab": len(corpus.vocab),
        "layout": args.layout,
        "sync_every": args.sync_every,
        "kernels": args.kernels,
        "params": params.to_dict(),
        "jobs": rows,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(*sys.argv[2:4], int(sys.argv[4]), sys.argv[5], int(sys.argv[6]), sys.argv[7])
    else:
        main()
