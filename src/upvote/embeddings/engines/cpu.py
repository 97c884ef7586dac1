"""The per-word CPU engine: numba kernels (cpu_kernels.py) run by Hogwild threads over
memory-mapped id shards; what `train()` runs on CPU.

Each epoch is cut into jobs of ~JOB_WORDS tokens at document boundaries; `threads` Python threads
take jobs from a queue and call a kernel compiled with nogil=True, so they run in parallel on the
shared arrays without locks (Hogwild, as word2vec.c and gensim do). Each job seeds its own random
generator from (seed, epoch, job), and its learning rate depends only on its position in the
corpus: one thread and a fixed seed give bit-identical vectors, and a run resumed from an epoch
checkpoint ends exactly where an uninterrupted one does. The learning rate decays linearly with
global progress, as word2vec.c's.

Several threads depart from plain Hogwild for one table, the output rows (syn1neg). Every word
writes the rows of its centre and noise words, mostly the most frequent words' rows, so under
plain Hogwild those cache lines travel between the cores all the time; when the host puts the
vCPUs far apart, that doubled CBOW's epoch time in many runs, and concurrent writes to one row can
lose updates (docs/word2vec.md has the measurements). So each thread trains its own copy of
syn1neg and adds what it changed to the shared table under a lock: the HOT_ROWS most frequent
words' rows after every job, every row each SYNC_WORDS words and at the end. Merging deltas, not
averaging, keeps every update; only their visibility to the other thread is delayed. Merging the
frequent rows as rarely as the others lost analogy accuracy: they must be merged often. One
thread trains on the shared table, bit for bit as before.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from upvote.embeddings.corpus import EncodedCorpus
from upvote.embeddings.engines.common import (
    Progress,
    ProgressBar,
    memory_bytes,
    write_atomically,
)
from upvote.embeddings.engines.cpu_kernels import cbow_kernel, huffman, merge_delta, sg_kernel
from upvote.embeddings.params import Word2VecParams

JOB_WORDS = 20_000
# several threads: each trains its own copy of syn1neg (see the module docstring)
HOT_ROWS = 2048  # the most frequent words' rows, merged after every job
SYNC_WORDS = 500_000  # every row merged after this many words of a thread
PRIVATE_BYTES = 1 << 30  # the copies take at most this and 1/8 of memory, else one shared table
CHECKPOINT = "checkpoint.npz"


def job_bounds(shard: np.ndarray, job_words: int) -> list[tuple[int, int]]:
    """Cut a shard into jobs of ~job_words tokens, at document separators where there is one."""
    n = shard.shape[0]
    separators = np.flatnonzero(np.asarray(shard) < 0)
    bounds, start = [], 0
    while start < n:
        target = start + job_words
        if target >= n:
            bounds.append((start, n))
            break
        i = np.searchsorted(separators, target)
        cut = int(separators[i]) + 1 if i < len(separators) else target
        cut = min(cut, start + 2 * job_words)  # a huge document is cut anyway
        bounds.append((start, cut))
        start = cut
    return bounds


def job_seed(seed: int, epoch: int, job: int) -> np.uint64:
    """The generator state job `job` of `epoch` starts from: independent of which thread runs it
    and of what ran before, so a run is reproducible and resumable per job."""
    return np.random.SeedSequence([seed, epoch, job]).generate_state(1, np.uint64)[0]


Weights = dict[str, np.ndarray]  # syn0 (the word vectors), syn1neg (negative sampling), syn1 (hs)


def init_weights(vocab_size: int, params: Word2VecParams) -> Weights:
    """syn0 uniform in [-0.5/D, 0.5/D), output layers zero (word2vec.c). An output layer that is
    off (negative=0, or hs=False) has no rows."""
    rng = np.random.default_rng(params.seed)
    dim = params.vector_size
    syn0 = ((rng.random((vocab_size, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    rows_neg = vocab_size if params.negative > 0 else 0
    rows_hs = vocab_size if params.hs else 0  # inner nodes of the Huffman tree: V - 1
    return {
        "syn0": syn0,
        "syn1neg": np.zeros((rows_neg, dim), dtype=np.float32),
        "syn1": np.zeros((rows_hs, dim), dtype=np.float32),
    }


def train_epoch(
    corpus: EncodedCorpus,
    weights: Weights,
    params: Word2VecParams,
    epoch: int,
    progress: Progress | None = None,
    job_words: int = JOB_WORDS,
) -> float:
    """One pass over the corpus with `params.threads` Hogwild threads; returns the mean loss."""
    keep = corpus.vocab.keep_probability(params.sample)
    noise_prob, noise_alias = corpus.vocab.noise_table(params.ns_exponent)
    codes, points, lengths = huffman(corpus.vocab.counts)
    syn0, syn1neg, syn1 = weights["syn0"], weights["syn1neg"], weights["syn1"]
    shards = list(corpus.shards())
    jobs = [(s, a, b) for s, shard in enumerate(shards) for a, b in job_bounds(shard, job_words)]
    epoch_len = sum(len(shard) for shard in shards)
    offsets = np.cumsum([0] + [len(shard) for shard in shards])
    total = epoch_len * params.epochs
    a0, a1 = params.start_alpha, params.min_alpha

    def alpha_at(shard: int, position: int) -> float:
        done = epoch * epoch_len + offsets[shard] + position
        return max(a1, a0 - (a0 - a1) * done / total)

    todo: queue.Queue = queue.Queue()
    for job in enumerate(jobs):
        todo.put(job)
    lock = threading.Lock()
    totals = {"loss": 0.0, "examples": 0, "words": 0}
    errors: list[BaseException] = []

    # several threads train private copies of syn1neg, merged often (see the module docstring);
    # each thread keeps its copy and the shared value the copy started from
    private = (
        params.threads > 1 and len(syn1neg) > 0
        and 2 * params.threads * syn1neg.nbytes <= min(PRIVATE_BYTES, memory_bytes() // 8)
    )  # fmt: skip
    merging = threading.Lock()

    def merge(output: np.ndarray, start: np.ndarray, rows: int) -> None:
        with merging:
            merge_delta(syn1neg, output, start, min(rows, len(syn1neg)))

    def worker() -> None:
        output, start = (syn1neg.copy(), syn1neg.copy()) if private else (syn1neg, syn1neg)
        unmerged = 0  # words trained since every row was last merged
        try:
            while not errors:
                try:
                    j, (s, a, b) = todo.get_nowait()
                except queue.Empty:
                    return
                unmerged += run_job(j, s, a, b, output)
                if private:  # the frequent rows after every job, all rows every SYNC_WORDS
                    every_row = unmerged >= SYNC_WORDS
                    merge(output, start, len(syn1neg) if every_row else HOT_ROWS)
                    unmerged = 0 if every_row else unmerged
        finally:
            if private:
                merge(output, start, len(syn1neg))

    def run_job(j: int, s: int, a: int, b: int, output: np.ndarray) -> int:
        """Train job j (shard s, tokens a:b) with `output` as syn1neg; returns its words."""
        tokens = np.ascontiguousarray(shards[s][a:b])
        common = (
            tokens, syn0, output, keep, noise_prob, noise_alias, params.window,
            params.negative, alpha_at(s, a), alpha_at(s, b), job_seed(params.seed, epoch, j),
            syn1, codes, points, lengths,
        )  # fmt: skip
        try:
            if params.sg:
                loss, examples, words = sg_kernel(*common)
            else:
                loss, examples, words = cbow_kernel(*common, params.cbow_mean)
        except BaseException as error:  # surface a worker's failure in the main thread
            errors.append(error)
            return 0
        with lock:
            totals["loss"] += loss
            totals["examples"] += examples
            totals["words"] += words
            if progress is not None:
                try:  # a callback that raises (a cancelled job) stops the whole epoch
                    progress(words, totals["loss"] / max(totals["examples"], 1))
                except BaseException as error:
                    errors.append(error)
        return words

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(params.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return totals["loss"] / max(totals["examples"], 1)


def save_checkpoint(directory: Path, weights: Weights, params: Word2VecParams, epoch, losses):
    """Write checkpoint.npz atomically: a kill never leaves half a file."""
    directory.mkdir(parents=True, exist_ok=True)
    state = json.dumps({"epochs_done": epoch, "params": params.to_dict(), "losses": losses})
    write_atomically(
        directory / CHECKPOINT, lambda f: np.savez(f, **weights, state=np.array(state))
    )


def load_checkpoint(directory: Path) -> tuple[Weights, dict] | None:
    """(weights, state) of the checkpoint in ``directory``, or None when there is none."""
    path = Path(directory) / CHECKPOINT
    if not path.exists():
        return None
    with np.load(path) as data:
        state = json.loads(str(data["state"]))
        return {name: data[name] for name in data.files if name != "state"}, state


def train_cpu(
    corpus: EncodedCorpus,
    params: Word2VecParams,
    checkpoint_dir: str | Path | None,
    resume: bool,
    progress: bool | Progress,
    on_checkpoint: Callable[[Path], None] | None = None,
) -> np.ndarray:
    """Train on an encoded corpus; returns syn0. checkpoint_dir: where checkpoint.npz is written
    after every epoch; resume=True continues from it. progress: True for a bar, or a callback.

    on_checkpoint(path): called with checkpoint.npz's path after each one is written (whole:
    save_checkpoint renames it into place), in the training thread, before the next epoch
    starts. An explicit hook rather than a watcher of the file's mtime: the caller (the jobs
    worker copies each checkpoint to a shared store) sees every checkpoint exactly once and
    never while it is being replaced, and this layer needs to know nothing of the caller."""
    if not params.hs and params.negative <= 0:
        raise ValueError("nothing to train with: negative=0 and no hierarchical softmax (--hs)")
    start_epoch, losses = 0, []
    state = load_checkpoint(Path(checkpoint_dir)) if (resume and checkpoint_dir) else None
    if state is not None:
        weights, info = state
        saved = Word2VecParams(**info["params"])
        if replace(saved, threads=params.threads) != replace(params, threads=params.threads):
            raise ValueError(
                f"cannot resume: the checkpoint in {checkpoint_dir} was trained with {saved}, "
                f"not {params}"
            )
        if weights["syn0"].shape != (len(corpus.vocab), params.vector_size):
            raise ValueError(
                f"cannot resume: the checkpoint in {checkpoint_dir} has another vocabulary"
            )
        start_epoch, losses = info["epochs_done"], info["losses"]
    else:
        weights = init_weights(len(corpus.vocab), params)
    total = corpus.n_tokens * params.epochs
    with ProgressBar(progress, total, completed=corpus.n_tokens * start_epoch) as callback:
        for epoch in range(start_epoch, params.epochs):
            losses.append(train_epoch(corpus, weights, params, epoch, callback))
            if checkpoint_dir is not None:
                save_checkpoint(Path(checkpoint_dir), weights, params, epoch + 1, losses)
                if on_checkpoint is not None:
                    on_checkpoint(Path(checkpoint_dir) / CHECKPOINT)
    return weights["syn0"]
