"""Corpus encoding and vector writing: the previous pure-Python path vs the numba path, same run.

    .venv/bin/python benchmarks/encode_corpus.py                      # the 100 MB text8-style gzip
    .venv/bin/python benchmarks/encode_corpus.py --plain              # decompressed first
    .venv/bin/python benchmarks/encode_corpus.py --tokenizer space --skip-old

Encoding = counting words, building the vocabulary and writing the id shards of `upvote embed
train CORPUS --tokenizer word` (min_count 5). The old path is the previous implementation, kept
here as the anchor: Python's text reader (iter_documents), WordTokenizer per document, a Counter,
then a dict lookup per token. Both outputs are compared (vocabulary and shards must be equal).
The new path's one-off cost of loading its compiled kernels (numba's cache) is timed apart.
Vector writing: save_word2vec_format of vocabulary x --dim random vectors, text format, old
f"{v:.9g}" per value vs the numba formatter. Times are wall seconds in one process: on a shared
machine compare the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from text8 import DEFAULT_CORPUS

from upvote.embeddings.corpus import encode_corpus, iter_documents
from upvote.embeddings.vectors import KeyedVectors
from upvote.embeddings.vocab import Vocab
from upvote.tokenizer.word import WordTokenizer


def old_encode(documents, tokenize, min_count: int) -> tuple[Vocab, list[np.ndarray]]:
    """The previous encoder (no pruning: the corpus holds far fewer than PRUNE_AT words)."""
    split = tokenize or str.split
    counter: Counter[str] = Counter()
    for doc in documents:
        counter.update(split(doc))
    vocab = Vocab.from_counter(counter, min_count)
    index, shards, ids = vocab.index, [], []
    for doc in documents:
        doc_ids = [i for i in map(index.get, split(doc)) if i is not None]
        if doc_ids:
            ids.extend(doc_ids)
            ids.append(-1)
    shards.append(np.asarray(ids, dtype=np.int32))  # 1 shard: the corpus holds < 10M x 2 ids
    return vocab, shards


def old_save_text(kv: KeyedVectors, path: Path) -> None:
    with open(path, "wb") as f:
        f.write(f"{len(kv)} {kv.vector_size}\n".encode())
        for key, row in zip(kv.index_to_key, kv.vectors, strict=True):
            f.write(f"{key} {' '.join(f'{v:.9g}' for v in row.tolist())}\n".encode())


def timed(label: str, size: int | None, run):
    """(seconds, result) of run(); prints MB/s of `size` bytes when given."""
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    rate = f"  {size / seconds / 1e6:7.1f} MB/s" if size else ""
    print(f"{label:<28} {seconds:7.2f} s{rate}", flush=True)
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--plain", action="store_true", help="decompress the corpus first")
    parser.add_argument("--tokenizer", choices=["word", "space"], default="word")
    parser.add_argument("--skip-old", action="store_true", help="time the new path only")
    parser.add_argument("--dim", type=int, default=100, help="vector size for the write test")
    args = parser.parse_args()

    tokenize = WordTokenizer().tokenize if args.tokenizer == "word" else None
    with tempfile.TemporaryDirectory(prefix="encode-bench-") as tmp:
        corpus = args.corpus
        if args.plain:
            corpus = Path(tmp) / "corpus.txt"
            with gzip.open(args.corpus, "rb") as src, open(corpus, "wb") as out:
                shutil.copyfileobj(src, out)
        with open(args.corpus, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        size = os.path.getsize(corpus)
        if gzipped and not args.plain:
            with gzip.open(corpus, "rb") as f:
                size = sum(len(block) for block in iter(lambda: f.read(1 << 24), b""))
        print(f"{corpus} ({'plain' if args.plain or not gzipped else 'gzip'}), {size / 1e6:.0f} MB "
              f"of text, tokenizer {args.tokenizer}, {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        documents = iter_documents(corpus)
        timed("new: load the kernels", None, lambda: encode_corpus(  # numba's cache, once
            ["warm up"], Path(tmp) / "warm", tokenize=tokenize, min_count=1))  # fmt: skip
        new_s, encoded = timed("new encode", size, lambda: encode_corpus(
            documents, Path(tmp) / "new", tokenize=tokenize, min_count=5))  # fmt: skip
        print(f"  {encoded.n_tokens:,} tokens, {len(encoded.vocab):,} words, "
              f"{encoded.meta['n_documents']:,} documents")  # fmt: skip
        if not args.skip_old:
            old_s, (vocab, shards) = timed("old encode (anchor)", size,
                                           lambda: old_encode(documents, tokenize, 5))  # fmt: skip
            same = vocab.words == encoded.vocab.words and np.array_equal(
                np.concatenate(shards), np.concatenate(list(encoded.shards()))
            )
            print(f"encode: new is {old_s / new_s:.1f}x the old speed; outputs identical: {same}")

        rng = np.random.default_rng(0)
        vectors = rng.normal(scale=0.3, size=(len(encoded.vocab), args.dim)).astype(np.float32)
        kv = KeyedVectors(encoded.vocab.words, vectors)
        new_w, _ = timed("new write vectors.txt", None, lambda: kv.save_word2vec_format(
            Path(tmp) / "new.txt"))  # fmt: skip
        written = os.path.getsize(Path(tmp) / "new.txt")
        print(
            f"  {len(kv):,} x {args.dim}: {written / 1e6:.0f} MB, {written / new_w / 1e6:.0f} MB/s"
        )
        if not args.skip_old:
            old_w, _ = timed("old write vectors.txt", None, lambda: old_save_text(
                kv, Path(tmp) / "old.txt"))  # fmt: skip
            same = (Path(tmp) / "old.txt").read_bytes() == (Path(tmp) / "new.txt").read_bytes()
            print(f"write: new is {old_w / new_w:.1f}x the old speed; files identical: {same}")


if __name__ == "__main__":
    main()
