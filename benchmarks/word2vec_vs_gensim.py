"""Our word2vec vs gensim 4.x on the text8-style Wikipedia corpus: speed and quality, same run.

    .venv/bin/python benchmarks/word2vec_vs_gensim.py --model both --epochs 1
    .venv/bin/python benchmarks/word2vec_vs_gensim.py --max-words 2000000 --model sg   # quick look
    .venv/bin/python benchmarks/word2vec_vs_gensim.py --device cuda --gensim-modes file  # GPU box
    .venv/bin/python benchmarks/word2vec_vs_gensim.py --device cuda --gensim-modes \
        --gpu-programs 1024 4096 16384    # GPU: quality vs concurrency of the Triton engine

Both sides get the same corpus (10,000-word documents, as gensim cuts text8), the same settings
(dim 100, window 5, negative 5, sample 1e-3, min_count 5, alpha 0.025 for skip-gram and 0.05 for
CBOW as word2vec.c; gensim's own CBOW default is 0.025) and all the machine's cores. Only the
training call is timed (gensim's build_vocab and our encoding are reported apart: our rows
carry encode_s, train_s and write_s, the phases of `upvote embed train`). gensim runs in
its `corpus_file` mode (its fastest) and its iterable mode (its best quality: corpus_file mode
loses analogy accuracy at 1 epoch); words/s = corpus words x epochs / training seconds. Quality:
analogy accuracy (questions-words, 30k most frequent words), WS-353 and SimLex-999 Spearman.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from numba import njit
from text8 import DEFAULT_CORPUS, quality, write_prefix

from upvote.embeddings import KeyedVectors, Word2VecParams, train
from upvote.embeddings.corpus import EncodedCorpus, encode_corpus, iter_documents
from upvote.embeddings.engines import cpu
from upvote.embeddings.engines.primitives import (
    draw_noise,
    dynamic_window,
    read_sentence,
    sigmoid_grad,
)


@njit(nogil=True, fastmath=True)
def sg_pair_kernel(
    tokens, syn0, syn1neg, keep, noise_prob, noise_alias, window, negative, alpha0, alpha1, seed,
    syn1, codes, points, lengths,  # hierarchical softmax: not in this experiment
):  # fmt: skip
    """Skip-gram per pair as word2vec.c (fresh noise per pair), to measure HogBatch against."""
    n = tokens.shape[0]
    dim = syn0.shape[1]
    sentence = np.empty(n, dtype=np.int32)
    neu1e = np.empty(dim, dtype=np.float32)
    state = seed
    loss = 0.0
    examples = 0
    words = 0
    start = 0
    while start < n:
        end, m, state = read_sentence(tokens, start, keep, sentence, state)
        words += end - start
        alpha = alpha0 + (alpha1 - alpha0) * start / n
        for pos in range(m):
            lo, hi, state = dynamic_window(pos, m, window, state)
            centre = sentence[pos]
            for j in range(lo, hi):
                if j == pos:
                    continue
                row = sentence[j]
                neu1e[:] = 0.0
                for k in range(negative + 1):
                    if k == 0:
                        t = centre
                        label = 1
                    else:
                        t, state = draw_noise(state, noise_prob, noise_alias)
                        if t == centre:
                            continue
                        label = 0
                    f = np.float32(0.0)
                    for d in range(dim):
                        f += syn0[row, d] * syn1neg[t, d]
                    g, example_loss = sigmoid_grad(f, label, alpha)
                    loss += example_loss
                    examples += 1
                    for d in range(dim):
                        neu1e[d] += g * syn1neg[t, d]
                    for d in range(dim):
                        syn1neg[t, d] += g * syn0[row, d]
                for d in range(dim):
                    syn0[row, d] += neu1e[d]
        start = end + 1
    return loss, examples, words


def run_gensim(text: Path, params: Word2VecParams, words: int, mode: str) -> dict:
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    settings = dict(
        vector_size=params.vector_size, window=params.window, negative=params.negative,
        sample=params.sample, min_count=params.min_count, sg=int(params.sg), hs=int(params.hs),
        alpha=params.start_alpha, min_alpha=params.min_alpha,  # CBOW: 0.05 as word2vec.c
        workers=params.threads, seed=params.seed + 1, epochs=params.epochs,
    )  # fmt: skip
    model = Word2Vec(**settings)
    t0 = time.perf_counter()
    if mode == "file":
        model.build_vocab(corpus_file=str(text))
    else:
        sentences = LineSentence(str(text))
        model.build_vocab(sentences)
    vocab_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    if mode == "file":
        model.train(
            corpus_file=str(text), total_words=model.corpus_total_words, epochs=params.epochs
        )
    else:
        model.train(sentences, total_examples=model.corpus_count, epochs=params.epochs)
    seconds = time.perf_counter() - t0
    kv = KeyedVectors(model.wv.index_to_key, model.wv.vectors)
    return {
        "engine": f"gensim {mode}",
        "prepare_s": round(vocab_s, 1),
        "train_s": round(seconds, 1),
        "words_per_s": round(words * params.epochs / seconds),
        **quality(kv),
    }


def run_ours(
    encoded: EncodedCorpus, params: Word2VecParams, words: int, label: str, encode_s: float,
    tmp: Path,
) -> dict:  # fmt: skip
    """Train and score; the phases of `upvote embed train` timed apart: encode_s (reading and
    encoding the corpus, measured once by the caller), train_s, write_s (vectors.txt)."""
    train([["warm", "up", "the", "kernels"]] * 5, params, min_count=1, epochs=1)  # load numba cache
    t0 = time.perf_counter()
    kv = train(encoded, params)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    kv.save_word2vec_format(tmp / "vectors.txt")
    write_s = time.perf_counter() - t0
    return {
        "engine": f"upvote {params.device}{label}",
        "encode_s": round(encode_s, 1),
        "train_s": round(seconds, 1),
        "write_s": round(write_s, 1),
        "words_per_s": round(words * params.epochs / seconds),
        **quality(kv),
    }


def compare(
    text: Path, encoded: EncodedCorpus, params: Word2VecParams, words: int, args, encode_s: float,
    tmp: Path, ours_first: bool,
) -> list[dict]:  # fmt: skip
    """One round: every gensim mode and our engine, in the order asked (the second to train in a
    process may find the machine's caches and memory in another state: --rounds alternates)."""
    label = " per-pair" if args.sg_kernel == "pair" and params.sg else ""

    def run_all_ours() -> list[dict]:
        rows = []
        if args.also_shared:  # the engine as before: one shared syn1neg
            private_bytes, cpu.PRIVATE_BYTES = cpu.PRIVATE_BYTES, 0
            try:
                rows.append(run_ours(encoded, params, words, " shared syn1neg", encode_s, tmp))
            finally:
                cpu.PRIVATE_BYTES = private_bytes
        for programs in args.gpu_programs:
            suffix = ""
            if programs is not None:  # an experiment: the engine's concurrency
                from upvote.embeddings.engines import gpu  # needs triton

                gpu.PROGRAMS = programs
                suffix = f" {programs} programs"
            rows.append(run_ours(encoded, params, words, label + suffix, encode_s, tmp))
        return rows

    def run_all_gensim() -> list[dict]:
        return [run_gensim(text, params, words, mode) for mode in args.gensim_modes]

    if ours_first:
        our_rows = run_all_ours()
        gensim_rows = run_all_gensim()
    else:
        gensim_rows = run_all_gensim()
        our_rows = run_all_ours()
    fastest = max(r["words_per_s"] for r in gensim_rows) if gensim_rows else None
    rows = gensim_rows + our_rows
    for row in rows:
        row.update(load=round(os.getloadavg()[0], 1), first="ours" if ours_first else "gensim")
        if fastest:
            row["speed_vs_fastest_gensim"] = round(row["words_per_s"] / fastest, 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--max-words", type=int, default=None, help="train on a prefix")
    parser.add_argument("--model", choices=["sg", "cbow", "both"], default="both")
    parser.add_argument("--epochs", type=int, nargs="+", default=[1])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--gensim-modes", nargs="*", choices=["file", "iterable"],
                        default=["file", "iterable"])  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--hs",
        action="store_true",
        help="hierarchical softmax instead of negative sampling (both sides)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat, alternating which side trains first")  # fmt: skip
    parser.add_argument("--gpu-programs", type=int, nargs="+", default=[None],
                        help="--device cuda: Triton programs per launch (concurrent walkers); "
                        "several values = a quality/speed sweep")  # fmt: skip
    parser.add_argument("--sg-kernel", choices=["hogbatch", "pair"], default="hogbatch",
                        help="pair: word2vec.c's per-pair skip-gram kernel instead")  # fmt: skip
    parser.add_argument("--also-shared", action="store_true",
                        help="also train with one shared syn1neg (plain Hogwild), as before the "
                        "per-thread copies")  # fmt: skip
    args = parser.parse_args()
    if args.sg_kernel == "pair":  # swap the kernel the engine calls (an experiment, not an option)
        cpu.sg_kernel = sg_pair_kernel  # train_epoch looks it up in engines.cpu

    results = []
    with tempfile.TemporaryDirectory(prefix="w2v-bench-") as tmp:
        text = Path(tmp) / "corpus.txt"
        words = write_prefix(args.corpus, args.max_words, text)
        t0 = time.perf_counter()
        encoded = encode_corpus(iter_documents(text), Path(tmp) / "encoded", min_count=5)
        encode_s = time.perf_counter() - t0
        print(f"corpus: {words:,} words, vocabulary {len(encoded.vocab):,}; "
              f"encoded in {encode_s:.1f} s; {args.threads} threads on {platform.machine()}, "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        models = ["sg", "cbow"] if args.model == "both" else [args.model]
        for model in models:
            for epochs in args.epochs:
                params = Word2VecParams(
                    sg=model == "sg", epochs=epochs, threads=args.threads, device=args.device,
                    seed=args.seed, hs=args.hs, negative=0 if args.hs else 5,
                )  # fmt: skip
                for round_ in range(args.rounds):  # round 0: gensim first, as with one
                    rows = compare(text, encoded, params, words, args, encode_s, Path(tmp),
                                   ours_first=round_ % 2 == 1)  # fmt: skip
                    for row in rows:
                        row.update(model=model, epochs=epochs, seed=args.seed, round=round_)
                        print(json.dumps(row), flush=True)
                    results.extend(rows)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
