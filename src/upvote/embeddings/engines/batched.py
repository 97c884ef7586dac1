"""The batched word2vec engine: one (sampler, step) per Hogwild thread, and the epoch loop.

Distributed training (distributed.py) runs it on every rank; `train_torch` runs it in one process
(tests and benchmarks measure the batched step's quality with it). Single-process `--device cuda`
runs the Triton engine (gpu.py) instead, which keeps per-word SGD: big batched steps lose quality
as they grow (docs/word2vec.md). The steps themselves are batched_torch.py (PyTorch: CUDA, and CPU
when asked for) and batched_numba.py (CPU: PyTorch's per-op overhead made a small step several
times slower than the work in it, benchmarks/RESULTS.md); this module picks them and runs epochs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from upvote.embeddings.corpus import EncodedCorpus
from upvote.embeddings.engines.batched_torch import Sampler, Step
from upvote.embeddings.engines.common import Progress, Schedule, write_atomically
from upvote.embeddings.engines.torch_common import (
    ROW_CAP,
    Batch,
    chunks,
    count_words,
    init_vectors,
    resolve_device,
    step_words,
)
from upvote.embeddings.params import Word2VecParams
from upvote.embeddings.vocab import Vocab

if TYPE_CHECKING:
    from upvote.embeddings.engines.batched_numba import NumbaSampler, NumbaStep

BATCH_WORDS = 512  # corpus words per step (before sub-sampling): ~2k skip-gram pairs

Worker = tuple["Sampler | NumbaSampler", "Step | NumbaStep"]  # one thread's sampler and step


def batched_workers(
    vocab: Vocab,
    params: Word2VecParams,
    syn0: torch.Tensor,
    syn1neg: torch.Tensor,
    seed: int,
    reduces: list[Callable[[torch.Tensor], None]] | None = None,
    kernels: str | None = None,
    row_cap: float = ROW_CAP,
) -> list[Worker]:
    """One (sampler, step) per training thread over the same syn0 / syn1neg.

    CPU: numba kernels, params.threads Hogwild threads, or one per entry of `reduces` (each
    thread's partial scores are summed by its own reduce: collectives of different threads must
    not interleave). CUDA: PyTorch, one thread. kernels="torch" forces PyTorch on CPU too, for
    tests and benchmarks of the GPU path's arithmetic. Thread t's sampler is seeded from
    (seed, t): the same on every rank of a model group. row_cap: see batched_torch.py.
    """
    if syn0.device.type == "cpu" and kernels != "torch":
        # imported here, not at the top: GPU boxes may have no numba, and CUDA never needs it
        from upvote.embeddings.engines.batched_numba import NumbaSampler, NumbaStep

        reduces = reduces or [None] * max(1, params.threads)
        return [
            (
                NumbaSampler(vocab, params, seed * 1_000_003 + thread),
                NumbaStep(syn0, syn1neg, params.sg, params.cbow_mean, reduce, row_cap),
            )
            for thread, reduce in enumerate(reduces)
        ]
    sampler = Sampler(vocab, params, syn0.device, seed)
    reduce = reduces[0] if reduces else None
    return [(sampler, Step(syn0, syn1neg, params.sg, params.cbow_mean, reduce, row_cap))]


def run_epoch(
    workers: list[Worker],
    streams: list[Iterator[torch.Tensor]],
    schedule: Schedule,
    done_words: int,
    progress: Progress | None = None,
    after_step: Callable[[Batch | None], bool] | None = None,
    synchronise: Callable[[], None] | None = None,
) -> tuple[int, float]:
    """Train on one pass of the streams (one per worker); returns (words done so far, mean loss
    per example).

    Each worker is a thread on its own stream (Hogwild: steps of different threads update the
    shared rows without locks, as word2vec.c's threads do; numba kernels release the GIL). A
    thread's learning rate follows its own position (its words x the number of threads), so it
    does not depend on timing: ranks that must take identical steps do. after_step(batch) runs
    under a lock after every step; when it returns True, synchronise() runs once every worker has
    finished its step and before any starts another.
    """
    lock = threading.Condition()
    state = {"done": done_words, "loss": 0.0, "examples": 0, "active": 0, "paused": False}
    failures: list[BaseException] = []

    def work(sampler, step, stream) -> None:
        own_words = 0
        for chunk in stream:
            with lock:
                while state["paused"]:
                    lock.wait()
                if failures:
                    return
                state["active"] += 1
            lr = schedule.lr(done_words + len(workers) * own_words)
            try:
                batch = sampler.batch(chunk.to(sampler.device, non_blocking=True))
                loss, n = step(batch, lr) if batch is not None else (0.0, 0)
            except BaseException:
                with lock:
                    state["active"] -= 1
                    lock.notify_all()
                raise
            with lock:
                state["active"] -= 1
                lock.notify_all()
                words = int((chunk >= 0).sum())
                own_words += words
                state["done"] += words
                state["loss"] += loss
                state["examples"] += n
                if progress is not None:
                    progress(words, state["loss"] / max(state["examples"], 1))
                if after_step is not None and after_step(batch) and synchronise is not None:
                    state["paused"] = True
                    lock.wait_for(lambda: state["active"] == 0)
                    try:
                        synchronise()
                    finally:
                        state["paused"] = False
                        lock.notify_all()

    def guarded(sampler, step, stream) -> None:
        try:
            work(sampler, step, stream)
        except BaseException as error:  # re-raised in the caller's thread below
            with lock:
                failures.append(error)
                lock.notify_all()

    if len(workers) == 1:
        work(*workers[0], streams[0])  # in the caller's thread: exceptions propagate as they are
    else:
        threads = [
            threading.Thread(target=guarded, args=(*worker, stream), daemon=True)
            for worker, stream in zip(workers, streams, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
    return state["done"], state["loss"] / max(state["examples"], 1)


def save_checkpoint(path: Path, workers: list[Worker], epoch: int, done: int) -> None:
    """State after `epoch` epochs, written atomically: a kill never corrupts it."""
    step = workers[0][1]
    state = {
        "syn0": step.syn0.cpu(),
        "syn1neg": step.syn1neg.cpu(),
        "rng": [sampler.get_state() for sampler, _ in workers],
        "epoch": epoch,
        "done_words": done,
    }
    write_atomically(path, partial(torch.save, state))


def load_checkpoint(path: Path, workers: list[Worker]) -> tuple[int, int]:
    """Restore a checkpoint into the workers; returns (epochs done, words done)."""
    state = torch.load(path, weights_only=True)
    step = workers[0][1]
    if state["syn0"].shape != step.syn0.shape or len(state["rng"]) != len(workers):
        raise ValueError(
            f"checkpoint {path} holds vectors of shape {tuple(state['syn0'].shape)} trained by "
            f"{len(state['rng'])} thread(s); this run needs {tuple(step.syn0.shape)} and "
            f"{len(workers)}: same corpus, --dim, --threads and parallelism, or a fresh --out"
        )
    step.syn0.copy_(state["syn0"])
    step.syn1neg.copy_(state["syn1neg"])
    for (sampler, _), rng in zip(workers, state["rng"], strict=True):
        sampler.set_state(rng)
    return int(state["epoch"]), int(state["done_words"])


def train_arrays(
    shards: list[np.ndarray],
    vocab: Vocab,
    params: Word2VecParams,
    progress: Progress | None = None,
    batch_words: int = BATCH_WORDS,
    checkpoint: Path | None = None,
    kernels: str | None = None,
    row_cap: float = ROW_CAP,
) -> tuple[np.ndarray, np.ndarray]:
    """Single-process training on token-id arrays (-1 between documents); returns float32 numpy
    (syn0, syn1neg). With `checkpoint`, resumes from it if present and rewrites it every epoch.
    kernels, row_cap: see batched_workers."""
    device = resolve_device(params.device)
    if device.type == "cpu":
        torch.set_num_threads(params.threads)
    dim = params.vector_size
    batch_words = step_words(shards, batch_words)
    syn0, syn1 = init_vectors(len(vocab), dim, range(dim), params.seed, device)
    workers = batched_workers(vocab, params, syn0, syn1, params.seed, None, kernels, row_cap)
    per_epoch = count_words(shards, batch_words)
    schedule = Schedule(params.start_alpha, params.min_alpha, per_epoch * params.epochs)
    first_epoch, done = 0, 0
    if checkpoint is not None and checkpoint.exists():
        first_epoch, done = load_checkpoint(checkpoint, workers)
    for epoch in range(first_epoch, params.epochs):
        streams = [chunks(shards, batch_words, t, len(workers)) for t in range(len(workers))]
        done, _ = run_epoch(workers, streams, schedule, done, progress)
        if checkpoint is not None:
            save_checkpoint(checkpoint, workers, epoch + 1, done)
    return syn0.cpu().numpy(), syn1.cpu().numpy()


def train_torch(
    corpus: EncodedCorpus,
    params: Word2VecParams,
    progress: Progress | None = None,
    *,
    batch_words: int = BATCH_WORDS,
    checkpoint: Path | None = None,
    kernels: str | None = None,
    row_cap: float = ROW_CAP,
) -> tuple[np.ndarray, np.ndarray]:
    """Train on an encoded corpus (shards streamed from disk) on params.device; see train_arrays."""
    shards = list(corpus.shards())
    return train_arrays(
        shards, corpus.vocab, params, progress, batch_words, checkpoint, kernels, row_cap
    )
