"""Whole commands, as users time them: `upvote embed train` vs a gensim script, same corpus.

    .venv/bin/python benchmarks/word2vec_whole.py               # sg and cbow, 1 and 5 epochs
    .venv/bin/python benchmarks/word2vec_whole.py --models cbow --epochs 1 --max-words 4000000

Each side runs as its own process, timed from start to exit (interpreter start, imports, reading
and counting the corpus, training, writing vectors in the word2vec text format), one after the
other in the same run; the ratio gensim / ours is what counts. Both read the same plain file of
10,000-word lines (the text8-style corpus decompressed once beforehand, not timed), with the same
settings: dim 100, window 5, negative 5, sample 1e-3, min_count 5, 2 threads, alpha 0.025 (sg) or
0.05 (cbow, word2vec.c's; given to gensim too). gensim runs in its `corpus_file` mode (its fastest;
`--gensim-mode iterable` for its LineSentence mode). Quality of both outputs: analogy accuracy
(30k most frequent words), WS-353 and SimLex-999 Spearman. Ours prints its phases' times.
Our numba kernels are compiled once per install (cached on disk): one untimed run of each model
on a small prefix comes first, so the timed runs are what every later command costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from text8 import DEFAULT_CORPUS, quality, write_prefix

from upvote.embeddings.vectors import KeyedVectors

SETTINGS = {"dim": 100, "window": 5, "negative": 5, "sample": 1e-3, "min_count": 5, "threads": 2}
ALPHA = {"sg": 0.025, "cbow": 0.05}


def gensim_child(text: str, model: str, epochs: int, out: str, mode: str) -> None:
    """The gensim side, run as its own process by ``main``."""
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    s = SETTINGS
    w2v = Word2Vec(
        vector_size=s["dim"], window=s["window"], negative=s["negative"], sample=s["sample"],
        min_count=s["min_count"], workers=s["threads"], sg=int(model == "sg"),
        alpha=ALPHA[model], epochs=epochs, seed=1,
    )  # fmt: skip
    if mode == "file":
        w2v.build_vocab(corpus_file=text)
        w2v.train(corpus_file=text, total_words=w2v.corpus_total_words, epochs=epochs)
    else:
        sentences = LineSentence(text)
        w2v.build_vocab(sentences)
        w2v.train(sentences, total_examples=w2v.corpus_count, epochs=epochs)
    w2v.wv.save_word2vec_format(out)


def ours_command(text: Path, out: Path, model: str, epochs: int) -> list[str]:
    s = SETTINGS
    return [
        sys.executable, "-m", "upvote", "embed", "train", str(text), "--out", str(out),
        "--tokenizer", "word", "--model", model, "--dim", str(s["dim"]),
        "--window", str(s["window"]), "--negative", str(s["negative"]),
        "--sample", str(s["sample"]), "--min-count", str(s["min_count"]),
        "--threads", str(s["threads"]), "--epochs", str(epochs), "--alpha", str(ALPHA[model]),
    ]  # fmt: skip


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return seconds, done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--max-words", type=int, default=None)
    parser.add_argument("--models", nargs="+", default=["sg", "cbow"], choices=["sg", "cbow"])
    parser.add_argument("--epochs", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--gensim-mode", default="file", choices=["file", "iterable"])
    parser.add_argument(
        "--gensim-child", nargs=5, metavar=("TEXT", "MODEL", "EPOCHS", "OUT", "MODE")
    )
    args = parser.parse_args()
    if args.gensim_child:
        text, model, epochs, out, mode = args.gensim_child
        gensim_child(text, model, int(epochs), out, mode)
        return
    print(json.dumps({"machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
                      "load_before": os.getloadavg()[0]}))  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        text = Path(work) / "corpus.txt"
        words = write_prefix(args.corpus, args.max_words, text)
        write_prefix(args.corpus, 200_000, Path(work) / "warm.txt")
        for model in args.models:  # untimed: compiles (or loads) the numba kernels
            warm_s, _ = timed(ours_command(Path(work) / "warm.txt", Path(work) / "warm", model, 1))
            print(json.dumps({"warm_up": model, "seconds": round(warm_s, 1)}), flush=True)
        for epochs in args.epochs:
            for model in args.models:
                gensim_out = Path(work) / "gensim.txt"
                gensim_s, _ = timed([sys.executable, __file__, "--gensim-child", str(text), model,
                                     str(epochs), str(gensim_out), args.gensim_mode])  # fmt: skip
                ours_dir = Path(work) / f"ours-{model}-{epochs}"
                ours_s, output = timed(ours_command(text, ours_dir, model, epochs))
                row = {
                    "model": model,
                    "epochs": epochs,
                    "words": words,
                    "gensim_s": round(gensim_s, 1),
                    "ours_s": round(ours_s, 1),
                    "ratio_gensim_over_ours": round(gensim_s / ours_s, 2),
                    "gensim": quality(KeyedVectors.load_word2vec_format(gensim_out)),
                    "ours": quality(KeyedVectors.load_word2vec_format(ours_dir / "vectors.txt")),
                    "ours_output_tail": output.strip().splitlines()[-6:],
                    "load_after": os.getloadavg()[0],
                }
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
