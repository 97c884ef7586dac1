"""Out-of-core training: a corpus several times larger than a hard memory cap trains to the end.

    .venv/bin/python benchmarks/out_of_core.py                      # CPU engine, 128 MiB cap, 4x
    .venv/bin/python benchmarks/out_of_core.py --engine torch --cap-mib 320

The trainer runs in its own memory cgroup (cgroup v1 memory.limit_in_bytes, or v2 memory.max;
needs root): the kernel OOM-kills it if resident memory plus the page cache it charges exceeds the
cap, so a completed run proves that training streams its shards. The corpus is the real
text8-style prefix (--max-words), encoded once, then its shards repeated until the encoded corpus
is `factor` times the cap (the vocabulary counts are scaled alike, so sub-sampling is unchanged):
a bigger real corpus would cost only encoding time, which is not what is measured here.
Training uses small settings (dim 16, window 2, negative 2, sample 1e-5) to read the whole corpus in
minutes on 2 cores; memory does not depend on them beyond V x dim. --engine cpu is the default
numba engine (upvote.embeddings.engines.cpu), --engine torch the batched PyTorch one
(engines.batched.train_torch): the torch runtime alone needs ~250 MiB charged to the cgroup, so it
needs a larger cap.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from text8 import DEFAULT_CORPUS, write_prefix

from upvote.embeddings import Word2VecParams, train
from upvote.embeddings.corpus import EncodedCorpus, encode_corpus, iter_documents
from upvote.embeddings.vocab import Vocab

PARAMS = replace(Word2VecParams(), vector_size=16, window=2, negative=2, sample=1e-5, threads=2)
BATCH_WORDS = 65_536


def tile_corpus(source: EncodedCorpus, out: Path, target_bytes: int) -> EncodedCorpus:
    """Repeat the source shards until they hold target_bytes of token ids."""
    tokens = np.concatenate([np.asarray(s) for s in source.shards()])
    copies = -(-target_bytes // tokens.nbytes)
    (out / "shards").mkdir(parents=True)
    for i in range(copies):
        with open(out / "shards" / f"{i:05d}.npy", "wb") as f:
            np.save(f, tokens)
            f.flush()
            os.fsync(f.fileno())
            # Drop the written pages from the page cache: the capped trainer must read them back,
            # so they are charged to its cgroup and the cap covers the corpus pages too.
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    Vocab(source.vocab.words, source.vocab.counts * copies).save(out / "vocab.tsv")
    n_tokens = source.n_tokens * copies
    meta = dict(source.meta, n_tokens=n_tokens, n_shards=copies, tiled_from=source.n_tokens)
    (out / "meta.json").write_text(json.dumps(meta))
    return EncodedCorpus.open(out)


def trainer(corpus_dir: str, engine: str) -> None:
    """The capped child: stream-train on the corpus, print one JSON line."""
    corpus = EncodedCorpus.open(corpus_dir)
    t0 = time.perf_counter()
    if engine == "torch":
        from upvote.embeddings.engines.batched import train_torch

        train_torch(corpus, replace(PARAMS, threads=1), batch_words=BATCH_WORDS)
    else:
        train(corpus, PARAMS)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seconds": round(seconds, 1),
                "words_per_s": round(corpus.n_tokens / seconds),
                "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


def run_capped(cap_bytes: int, cmd: list[str]) -> tuple[int, str, int]:
    """Run cmd in a new memory cgroup limited to cap_bytes; (exit code, stdout, peak bytes)."""
    v1 = Path("/sys/fs/cgroup/memory")
    if v1.is_dir():
        group, limit, peak = v1, "memory.limit_in_bytes", "memory.max_usage_in_bytes"
    else:
        group, limit, peak = Path("/sys/fs/cgroup"), "memory.max", "memory.peak"
    group = group / f"upvote-ooc-{os.getpid()}"
    try:
        group.mkdir()
    except OSError as error:
        sys.exit(f"Error: cannot create a memory cgroup ({error}); run as root on cgroup v1/v2")
    try:
        (group / limit).write_text(str(cap_bytes))
        wrapped = ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh", *cmd]
        proc = subprocess.run(wrapped, capture_output=True, text=True)
        used = int((group / peak).read_text()) if (group / peak).exists() else -1
        sys.stderr.write(proc.stderr[-2000:])
        return proc.returncode, proc.stdout, used
    finally:
        group.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--max-words", type=int, default=3_000_000)
    parser.add_argument("--engine", choices=["cpu", "torch"], default="cpu")
    parser.add_argument("--cap-mib", type=int, default=128)
    parser.add_argument("--factor", type=float, default=4.0, help="corpus bytes / cap")
    args = parser.parse_args()
    cap = args.cap_mib * 2**20
    with tempfile.TemporaryDirectory(prefix="upvote-ooc-", dir=os.environ.get("TMPDIR")) as tmp:
        text = Path(tmp) / "corpus.txt"
        write_prefix(args.corpus, args.max_words, text)
        source = encode_corpus(iter_documents(text), Path(tmp) / "prefix", min_count=5)
        corpus = tile_corpus(source, Path(tmp) / "tiled", int(cap * args.factor))
        corpus_bytes = sum(p.stat().st_size for p in corpus.shard_paths())
        mib, ratio = corpus_bytes / 2**20, corpus_bytes / cap
        print(f"corpus: {corpus.n_tokens:,} tokens, {mib:,.0f} MiB ({ratio:.1f}x the cap)")
        cmd = [sys.executable, __file__, "trainer", str(corpus.directory), args.engine]
        code, out, peak = run_capped(cap, cmd)
    result = {
        "engine": args.engine,
        "cap_mib": args.cap_mib,
        "corpus_mib": round(corpus_bytes / 2**20),
        "corpus_over_cap": round(corpus_bytes / cap, 2),
        "tokens": corpus.n_tokens,
        "exit_code": code,
        "cgroup_peak_mib": round(peak / 2**20),
        "params": PARAMS.to_dict(),
    } | (json.loads(out) if code == 0 else {})
    print(json.dumps(result, indent=2))
    if code != 0:
        sys.exit(f"Error: the capped trainer failed with exit code {code} (137: OOM-killed)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "trainer":
        trainer(sys.argv[2], sys.argv[3])
    else:
        main()
