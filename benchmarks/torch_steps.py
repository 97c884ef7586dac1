"""Quality of the batched PyTorch engine vs its step size and row cap (the GPU-path trade-off).

    .venv/bin/python benchmarks/torch_steps.py --max-words 3000000 --batch-words 128,512,4096
    .venv/bin/python benchmarks/torch_steps.py --row-cap 16,inf --batch-words 512
    .venv/bin/python benchmarks/torch_steps.py --device cuda --max-words 17000000 \\
        --batch-words 512,4096,16384                       # on a GPU machine

Big steps are what make a GPU fast and what wrecks word2vec quality (summed stale updates to
frequent words). Each run: skip-gram, dim 100, window 5, negative 5, sample 1e-3, 1 epoch, the
text8-style prefix; analogy (30k most frequent words), WS-353 and SimLex of the vectors, words/s.
--row-cap inf is plain summing of a row's updates (no cap). On CPU the step runs as the numba
kernels (engines/batched_numba.py, the PyTorch step's arithmetic; one thread), on CUDA as PyTorch.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from text8 import DEFAULT_CORPUS, quality, write_prefix

from upvote.embeddings import KeyedVectors, Word2VecParams
from upvote.embeddings.corpus import encode_corpus, iter_documents
from upvote.embeddings.engines import batched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--max-words", type=int, default=3_000_000)
    parser.add_argument("--batch-words", default="512,4096")
    parser.add_argument("--row-cap", default=str(batched.ROW_CAP), help="e.g. 16,inf")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    params = replace(Word2VecParams(), device=args.device, threads=1)
    with tempfile.TemporaryDirectory(prefix="upvote-steps-") as tmp:
        text = Path(tmp) / "corpus.txt"
        words = write_prefix(args.corpus, args.max_words, text)
        corpus = encode_corpus(iter_documents(text), Path(tmp) / "encoded", min_count=5)
        for cap in [float(c) for c in args.row_cap.split(",")]:
            for batch_words in [int(b) for b in args.batch_words.split(",")]:
                t0 = time.perf_counter()
                syn0, _ = batched.train_torch(corpus, params, batch_words=batch_words, row_cap=cap)
                seconds = time.perf_counter() - t0
                kv = KeyedVectors(corpus.vocab.words, syn0, corpus.vocab.counts)
                row = {"batch_words": batch_words, "row_cap": cap, "seconds": round(seconds, 1)}
                row["words_per_s"] = round(words / seconds)
                print(json.dumps(row | quality(kv)), flush=True)


if __name__ == "__main__":
    main()
