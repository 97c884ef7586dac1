"""How stale can data-parallel replicas be? Simulated in one process with the numba kernel.

Data-parallel training (distributed.py, --layout data) lets G replicas train on disjoint parts of
the corpus and combine their updates every so often. Could each replica run the fast numba engine
(per-word SGD, Hogwild threads) and synchronise rarely (a full V x D all_reduce costs ~25 ms per
matrix on gloo here)? This script answers the quality half without torchrun: G replicas, each a
copy of the weights, take turns on their next ROUND_WORDS words of jobs (round-robin over the
corpus), then the replicas are combined as a synchronisation would: --combine sum adds every
replica's delta, --combine mean averages the replicas, each having trained at G x the learning
rate (distributed.py's rule). Skip-gram, 1 epoch, one thread (deterministic), full text8-style
corpus.

    .venv/bin/python benchmarks/replica_staleness.py --replicas 2 --round-words 100000
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from text8 import DEFAULT_CORPUS, quality, write_prefix

from upvote.embeddings import KeyedVectors, Word2VecParams
from upvote.embeddings.corpus import encode_corpus, iter_documents
from upvote.embeddings.engines import cpu, cpu_kernels


def alpha_schedule(offsets: np.ndarray, params: Word2VecParams):
    """word2vec.c's linear decay by global corpus position (as train_epoch), for 1 epoch."""
    a0, a1, total = params.start_alpha, params.min_alpha, offsets[-1]
    return lambda shard, position: max(a1, a0 - (a0 - a1) * (offsets[shard] + position) / total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument(
        "--round-words", type=int, default=100_000, help="words per replica per sync"
    )
    parser.add_argument("--combine", choices=["sum", "mean"], default="mean")
    args = parser.parse_args()
    params = Word2VecParams(sg=True, threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "c.txt"
        write_prefix(DEFAULT_CORPUS, None, text)
        corpus = encode_corpus(iter_documents(text), Path(tmp) / "enc", min_count=5)
        weights = cpu.init_weights(len(corpus.vocab), params)
        syn0, syn1neg, syn1 = weights["syn0"], weights["syn1neg"], weights["syn1"]
        keep = corpus.vocab.keep_probability(params.sample)
        prob, alias = corpus.vocab.noise_table(params.ns_exponent)
        codes, points, lengths = cpu_kernels.huffman(corpus.vocab.counts)
        shards = list(corpus.shards())
        jobs = [
            (s, a, b) for s, x in enumerate(shards) for a, b in cpu.job_bounds(x, cpu.JOB_WORDS)
        ]
        alpha_at = alpha_schedule(np.cumsum([0] + [len(x) for x in shards]), params)
        per_round = max(1, args.round_words // cpu.JOB_WORDS)
        # sum: deltas added (Hogwild-like); mean: replicas averaged, each at G x the learning
        # rate (what distributed.py does now)
        share = lr_scale = 1 if args.combine == "sum" else args.replicas
        mine = [jobs[r :: args.replicas] for r in range(args.replicas)]
        t0 = time.time()
        for start in range(0, max(map(len, mine)), per_round):
            base0, base1 = syn0.copy(), syn1neg.copy()
            for r in range(args.replicas):  # each replica from the weights of the last sync
                s0, s1 = base0.copy(), base1.copy()
                for j, (s, a, b) in enumerate(mine[r][start : start + per_round]):
                    cpu_kernels.sg_kernel(
                        np.ascontiguousarray(shards[s][a:b]), s0, s1, keep, prob, alias,
                        params.window, params.negative, lr_scale * alpha_at(s, a),
                        lr_scale * alpha_at(s, b),
                        cpu.job_seed(0, r, start + j), syn1, codes, points, lengths,
                    )  # fmt: skip
                syn0 += (s0 - base0) / share  # the sync: every replica's delta is added
                syn1neg += (s1 - base1) / share  # (or its G-th, averaging)
        row = {"replicas": args.replicas, "round_words": args.round_words,
               "combine": args.combine, "seconds": round(time.time() - t0)}  # fmt: skip
        print(json.dumps({**row, **quality(KeyedVectors(corpus.vocab.words, syn0))}), flush=True)


if __name__ == "__main__":
    main()
