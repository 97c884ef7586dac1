"""Batched word2vec (skip-gram / CBOW, negative sampling) in plain PyTorch.

The core of distributed training (distributed.py); single-process `--device cuda` runs the Triton
engine (triton_engine.py), which keeps per-word SGD instead of big steps. One step takes a chunk
of the token stream and does, on the device, what word2vec.c does word by word:

1. sub-sample frequent words and draw a dynamic window per centre word;
2. list the (centre, context) pairs of every window (documents are separated by -1 ids);
3. draw K noise words per centre word, shared by all the context words of its window (HogBatch,
   Ji et al. 2016): K draws per window instead of K per pair, fewer rows touched;
4. gather rows with index_select, score with bmm, take the sigmoid gradients;
5. scatter the updates with index_add_, a row's summed update scaled down to at most ROW_CAP
   single updates' worth.

Why step 5 caps: a step applies the summed gradients of thousands of pairs computed from the same
stale vectors. A frequent word (often a noise word) can be hit hundreds of times in one step and the
sum of its updates overshoots (the issue measured analogy 0.169 at 4k pairs per step falling to 0.0
at 65k; here plain summing diverged to NaN at 4,096 words per step). Averaging instead (each row
one update per step) under-trains small vocabularies; the cap keeps sequential-SGD semantics for
rows hit a few times and bounds the rest. Even so, quality falls as steps grow, so the default step
is small (BATCH_WORDS); benchmarks/RESULTS.md ("Distributed word2vec") has the measurements.

Column partitioning (Ordentlich et al., CIKM 2016) needs one hook: `Step.reduce`, called on the
partial dot products before the sigmoid. Distributed training passes an all_reduce there; each rank
then holds and updates only its slice of the dimensions.

On CPU the sampler and step run as numba kernels (numba_steps.py, same arithmetic): PyTorch's
per-op overhead made a 512-word step ~7x slower than the work in it. `batched_workers` picks them,
one per Hogwild thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from upvote.embeddings.corpus import EncodedCorpus
from upvote.embeddings.params import Word2VecParams
from upvote.embeddings.vocab import Vocab

if TYPE_CHECKING:
    from upvote.embeddings.numba_steps import NumbaSampler, NumbaStep

BATCH_WORDS = 512  # corpus words per step (before sub-sampling): ~2k skip-gram pairs
MIN_STEPS = 64  # per epoch: a tiny corpus gets smaller steps rather than a handful of huge ones
ROW_CAP = 16.0  # a row moves at most this many single updates' worth per step

Progress = Callable[[int, float], None]  # (corpus words done in this call, mean loss per example)


def resolve_device(device: str) -> torch.device:
    """`cuda` without a usable GPU is a user error with a clear message, not a torch traceback."""
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "--device cuda was asked for but PyTorch sees no CUDA GPU "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'}); "
            "use --device cpu or install a CUDA build of torch"
        )
    return torch.device(device)


@dataclass
class Batch:
    """The training examples of one step.

    targets[c] = the c-th kept centre word followed by its K noise words; pair_centre[p] says which
    centre the p-th context word (row inputs[p] of syn0) belongs to.
    """

    inputs: torch.Tensor  # [P] int64 syn0 rows (context words)
    pair_centre: torch.Tensor  # [P] int64 index into targets
    targets: torch.Tensor  # [C, 1 + K] int64 syn1neg rows


class Sampler:
    """Turns chunks of token ids into Batches on the device (sub-sampling, windows, negatives)."""

    def __init__(self, vocab: Vocab, params: Word2VecParams, device: torch.device, seed: int):
        self.keep = torch.from_numpy(vocab.keep_probability(params.sample)).to(device)
        weights = torch.from_numpy(vocab.counts.astype(np.float64) ** params.ns_exponent)
        self.noise_cdf = (torch.cumsum(weights, 0) / weights.sum()).to(device)
        self.window, self.negative, self.sg = params.window, params.negative, params.sg
        self.device = device
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(seed)

    def batch(self, tokens: torch.Tensor) -> Batch | None:
        """tokens: int64 ids with -1 between documents. None when nothing trainable is left."""
        gen, dev = self.generator, self.device
        doc = torch.cumsum(tokens < 0, 0)
        valid = tokens >= 0
        draw = torch.rand(tokens.shape[0], generator=gen, device=dev)
        kept = valid & (draw < self.keep[tokens.clamp(min=0)])
        words, doc = tokens[kept], doc[kept]
        n = words.shape[0]
        if n < 2:
            return None
        reach = torch.randint(1, self.window + 1, (n,), generator=gen, device=dev)
        centres, contexts = [], []
        for offset in range(1, min(self.window, n - 1) + 1):
            left = torch.arange(n - offset, device=dev)
            right = left + offset
            same_doc = doc[left] == doc[right]
            fwd = same_doc & (reach[left] >= offset)  # right is in left's window
            bwd = same_doc & (reach[right] >= offset)  # left is in right's window
            centres += [left[fwd], right[bwd]]
            contexts += [right[fwd], left[bwd]]
        centre, context = torch.cat(centres), torch.cat(contexts)
        if centre.numel() == 0:
            return None
        # Keep only centre words that have at least one context word, renumbered 0..C-1.
        has_context = torch.zeros(n, dtype=torch.bool, device=dev)
        has_context[centre] = True
        renumber = torch.cumsum(has_context, 0) - 1
        centre_words = words[has_context]
        draws = torch.rand(centre_words.shape[0], self.negative, generator=gen, device=dev)
        noise = torch.searchsorted(self.noise_cdf, draws).clamp_(max=self.noise_cdf.shape[0] - 1)
        targets = torch.cat([centre_words.unsqueeze(1), noise], 1)
        return Batch(inputs=words[context], pair_centre=renumber[centre], targets=targets)

    def get_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


def _add_capped(weight: torch.Tensor, rows: torch.Tensor, updates: torch.Tensor) -> None:
    """weight[r] += the sum of the updates aimed at row r in this step, scaled down to at most
    ROW_CAP updates' worth when more arrive (see the module docstring)."""
    unique, inverse, counts = torch.unique(rows, return_inverse=True, return_counts=True)
    summed = torch.zeros(unique.shape[0], weight.shape[1], dtype=weight.dtype, device=weight.device)
    summed.index_add_(0, inverse, updates)
    summed *= (ROW_CAP / counts.to(weight.dtype)).clamp_(max=1.0).unsqueeze(1)
    weight.index_add_(0, unique, summed)


@dataclass
class Step:
    """syn0 / syn1neg (all dimensions, or one rank's column slice) and the SGD step on them."""

    syn0: torch.Tensor  # [V, d] input vectors (the word vectors users get)
    syn1neg: torch.Tensor  # [V, d] output vectors
    sg: bool
    cbow_mean: bool
    # Sums the partial dot products over the ranks that hold the other dimensions (in place).
    reduce: Callable[[torch.Tensor], None] | None = None

    def __call__(self, batch: Batch, lr: float) -> tuple[float, int]:
        """One SGD step; returns (summed loss, number of examples)."""
        syn0, syn1 = self.syn0, self.syn1neg
        n_centres, width = batch.targets.shape
        dim = syn0.shape[1]
        out = syn1.index_select(0, batch.targets.reshape(-1)).view(n_centres, width, dim)
        inp = syn0.index_select(0, batch.inputs)  # [P, d]
        if self.sg:  # every (context word, centre + noise) pair is one example
            out = out.index_select(0, batch.pair_centre)  # [P, 1 + K, d]
            hidden = inp
            out_rows = batch.targets.index_select(0, batch.pair_centre).reshape(-1)
        else:  # CBOW: the (mean of the) context vectors of a window is one example
            hidden = torch.zeros(n_centres, dim, dtype=syn0.dtype, device=syn0.device)
            hidden.index_add_(0, batch.pair_centre, inp)
            if self.cbow_mean:
                size = torch.bincount(batch.pair_centre, minlength=n_centres).to(syn0.dtype)
                hidden /= size.unsqueeze(1)
            out_rows = batch.targets.reshape(-1)
        score = torch.bmm(out, hidden.unsqueeze(2)).squeeze(2)  # [examples, 1 + K]
        if self.reduce is not None:
            self.reduce(score)
        label = torch.zeros_like(score)
        label[:, 0] = 1.0
        grad = (label - torch.sigmoid(score)) * lr  # word2vec.c's g, times alpha
        loss = -(
            torch.nn.functional.logsigmoid(score[:, 0]).sum()
            + torch.nn.functional.logsigmoid(-score[:, 1:]).sum()
        )
        hidden_grad = torch.bmm(grad.unsqueeze(1), out).squeeze(1)  # word2vec.c's neu1e
        out_update = (grad.unsqueeze(2) * hidden.unsqueeze(1)).reshape(-1, dim)
        # CBOW: every context word of the window gets the whole neu1e, as in word2vec.c.
        in_update = hidden_grad if self.sg else hidden_grad.index_select(0, batch.pair_centre)
        _add_capped(syn1, out_rows, out_update)
        _add_capped(syn0, batch.inputs, in_update)
        return float(loss), score.shape[0]


Worker = tuple["Sampler | NumbaSampler", "Step | NumbaStep"]  # one thread's sampler and step


def batched_workers(
    vocab: Vocab,
    params: Word2VecParams,
    syn0: torch.Tensor,
    syn1neg: torch.Tensor,
    seed: int,
    reduces: list[Callable[[torch.Tensor], None]] | None = None,
    kernels: str | None = None,
) -> list[Worker]:
    """One (sampler, step) per training thread over the same syn0 / syn1neg.

    CPU: numba kernels, params.threads Hogwild threads, or one per entry of `reduces` (each
    thread's partial scores are summed by its own reduce: collectives of different threads must
    not interleave). CUDA: PyTorch, one thread. kernels="torch" forces PyTorch on CPU too, for
    tests and benchmarks of the GPU path's arithmetic. Thread t's sampler is seeded from
    (seed, t): the same on every rank of a model group.
    """
    if syn0.device.type == "cpu" and kernels != "torch":
        from upvote.embeddings.numba_steps import NumbaSampler, NumbaStep  # no numba on GPU boxes

        reduces = reduces or [None] * max(1, params.threads)
        return [
            (
                NumbaSampler(vocab, params, seed * 1_000_003 + thread),
                NumbaStep(syn0, syn1neg, params.sg, params.cbow_mean, reduce, ROW_CAP),
            )
            for thread, reduce in enumerate(reduces)
        ]
    sampler = Sampler(vocab, params, syn0.device, seed)
    reduce = reduces[0] if reduces else None
    return [(sampler, Step(syn0, syn1neg, params.sg, params.cbow_mean, reduce))]


def init_vectors(
    vocab_size: int, dim: int, columns: range, seed: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """word2vec.c's init (syn0 uniform in +-0.5/dim, syn1neg zero) for the given columns only.

    Each column slice has its own seed, so a rank never materialises the full matrix and all
    replicas of a slice start equal.
    """
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed * 1_000_003 + columns.start)
    syn0 = (torch.rand(vocab_size, len(columns), generator=gen) - 0.5) / dim
    return syn0.to(device), torch.zeros(vocab_size, len(columns), device=device)


def chunks(
    shards: list[np.ndarray], batch_words: int, part: int = 0, parts: int = 1
) -> Iterator[torch.Tensor]:
    """Stream the corpus as int64 chunks of ~batch_words ids; keep chunk i iff i % parts == part.

    Shards are memory-mapped, so only one chunk at a time is in memory (training is out-of-core).
    """
    index = 0
    for shard in shards:
        for start in range(0, shard.shape[0], batch_words):
            if index % parts == part:
                yield torch.from_numpy(np.asarray(shard[start : start + batch_words], np.int64))
            index += 1


def count_words(shards: list[np.ndarray], batch_words: int, part: int = 0, parts: int = 1) -> int:
    """Corpus words (ids >= 0) in this part of the stream: the denominator of the LR schedule."""
    return sum(int((chunk >= 0).sum()) for chunk in chunks(shards, batch_words, part, parts))


def step_words(shards: list[np.ndarray], batch_words: int) -> int:
    """batch_words, or less for a corpus too small to give MIN_STEPS steps per epoch."""
    return max(64, min(batch_words, sum(s.shape[0] for s in shards) // MIN_STEPS))


@dataclass
class Schedule:
    """Linear learning-rate decay over all epochs, as in word2vec.c."""

    start: float
    end: float
    total_words: int

    def lr(self, done_words: int) -> float:
        frac = min(done_words / max(self.total_words, 1), 1.0)
        return max(self.start - (self.start - self.end) * frac, self.end)


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
    """State after `epoch` epochs, written to a temp file then renamed: a kill never corrupts it."""
    step = workers[0][1]
    state = {
        "syn0": step.syn0.cpu(),
        "syn1neg": step.syn1neg.cpu(),
        "rng": [sampler.get_state() for sampler, _ in workers],
        "epoch": epoch,
        "done_words": done,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


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
) -> tuple[np.ndarray, np.ndarray]:
    """Single-process training on token-id arrays (-1 between documents); returns float32 numpy
    (syn0, syn1neg). With `checkpoint`, resumes from it if present and rewrites it every epoch.
    kernels: see batched_workers."""
    device = resolve_device(params.device)
    if device.type == "cpu":
        torch.set_num_threads(params.threads)
    dim = params.vector_size
    batch_words = step_words(shards, batch_words)
    syn0, syn1 = init_vectors(len(vocab), dim, range(dim), params.seed, device)
    workers = batched_workers(vocab, params, syn0, syn1, params.seed, kernels=kernels)
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
) -> tuple[np.ndarray, np.ndarray]:
    """Train on an encoded corpus (shards streamed from disk) on params.device; see train_arrays."""
    return train_arrays(
        list(corpus.shards()), corpus.vocab, params, progress, batch_words, checkpoint, kernels
    )
