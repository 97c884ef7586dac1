"""Spark MLlib Word2Vec (pyspark, local[*]) beside our word2vec: same corpus, same settings.

    .venv/bin/pip install pyspark      # a benchmark extra (needs Java 17), not a runtime dependency
    .venv/bin/python benchmarks/spark_mllib.py --max-words 2000000
    .venv/bin/python benchmarks/spark_mllib.py --partitions 1,2   # Spark's accuracy vs partitions

Settings on both sides: vectorSize 100, windowSize 5, minCount 5, 1 iteration/epoch, all cores.
Spark MLlib only has skip-gram with hierarchical softmax, no sub-sampling, and keeps the whole
model on the driver (it refuses vocabSize x vectorSize >= 2^31); ours is skip-gram with negative
sampling (negative 5, sample 1e-3), trained by `upvote.embeddings.word2vec` on CPU. Only training is
timed (Spark: Word2Vec.fit, which includes its vocabulary pass over a cached DataFrame; ours:
train() on the already encoded corpus). Quality: analogy accuracy (30k most frequent words) and
WS-353 / SimLex-999 Spearman, by the same evaluator for both.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from text8 import DEFAULT_CORPUS, quality, write_prefix

from upvote.embeddings import KeyedVectors, Word2VecParams, train
from upvote.embeddings.corpus import encode_corpus, iter_documents

SPARK_SENTENCE = 1000  # Spark's default maxSentenceLength: longer rows are cut anyway


def run_spark(text: Path, params: Word2VecParams, partitions: int) -> dict:
    from pyspark.ml.feature import Word2Vec
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[*]")
        .appName("upvote-word2vec-bench")
        .config("spark.driver.memory", "4g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    rows = []
    for line in text.read_text().splitlines():
        words = line.split()
        rows += [(words[i : i + SPARK_SENTENCE],) for i in range(0, len(words), SPARK_SENTENCE)]
    frame = spark.createDataFrame(rows, ["text"]).repartition(max(partitions, 1)).cache()
    frame.count()  # materialise the cache outside the timed fit
    word2vec = Word2Vec(
        vectorSize=params.vector_size, windowSize=params.window, minCount=params.min_count,
        maxIter=params.epochs, numPartitions=partitions, seed=params.seed, inputCol="text",
        outputCol="vector",
    )  # fmt: skip
    t0 = time.perf_counter()
    model = word2vec.fit(frame)
    seconds = time.perf_counter() - t0
    vectors = model.getVectors().collect()
    spark.stop()
    # Spark returns words in no particular order; the evaluator wants frequency order.
    counts = {}
    for line in text.read_text().splitlines():
        for w in line.split():
            counts[w] = counts.get(w, 0) + 1
    vectors.sort(key=lambda row: -counts[row.word])
    kv = KeyedVectors(
        [row.word for row in vectors],
        np.array([row.vector.toArray() for row in vectors], dtype=np.float32),
    )
    return {"engine": f"spark-mllib numPartitions={partitions}", "seconds": round(seconds, 2)} | (
        quality(kv)
    )


def run_ours(text: Path, params: Word2VecParams, workdir: Path) -> dict:
    corpus = encode_corpus(iter_documents(text), workdir / "encoded", min_count=params.min_count)
    t0 = time.perf_counter()
    kv = train(corpus, params)
    seconds = time.perf_counter() - t0
    return {"engine": "upvote (SGNS, CPU)", "seconds": round(seconds, 2)} | quality(kv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--max-words", type=int, default=2_000_000)
    parser.add_argument("--partitions", default="1", help="Spark numPartitions values to run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    params = Word2VecParams(threads=os.cpu_count() or 1)  # dim 100, window 5, min_count 5, 1 epoch
    with tempfile.TemporaryDirectory(prefix="upvote-spark-bench-") as tmp:
        text = Path(tmp) / "corpus.txt"
        words = write_prefix(args.corpus, args.max_words, text)
        rows = [run_ours(text, params, Path(tmp))]
        print(json.dumps(rows[-1]), flush=True)
        for partitions in [int(p) for p in args.partitions.split(",")]:
            rows.append(run_spark(text, params, partitions))
            print(json.dumps(rows[-1]), flush=True)
    for row in rows:
        row["words_per_s"] = round(words * params.epochs / row["seconds"])
    result = {"corpus_words": words, "cores": os.cpu_count(), "runs": rows}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
