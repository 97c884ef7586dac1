"""Distributed word2vec under torchrun: column-partitioned model groups x data-parallel replicas.

    torchrun --standalone --nproc-per-node 4 -m upvote embed train CORPUS \
        --model-parallel 2 --out DIR

The WORLD_SIZE ranks form WORLD_SIZE / M *model groups* of M ranks (M = model_parallel):

- Model parallelism (Ordentlich et al., CIKM 2016). Rank r of a group holds dimensions
  [r*D/M, (r+1)*D/M) of every row of syn0 and syn1neg, so a vocabulary M times larger than one
  machine's memory fits. All ranks of a group draw the same pairs and noise words (same seed, same
  chunks); each computes partial dot products on its slice, one all_reduce sums those
  batch x (1 + K) scalars, and each rank applies the sigmoid gradients to its own slice. The traffic
  per step is O(batch x K) scalars, independent of D.
- Data parallelism. The model groups train on disjoint chunks of the corpus (chunk i goes to
  worker i mod (G x T) of the G groups' T threads) and every `sync_every` steps and at each
  epoch's end *average* their slices (local SGD / model averaging), each replica training with G
  times the learning rate (the linear scaling rule).
  A row only one replica touched thus moves as if that replica's update were applied alone; a
  frequent row, which every replica pulls to about the same place, lands at the mean of those
  places. Summing the replicas' deltas instead (Hogwild-like) moves such a row G times too far: the
  error grows by a factor G - 1 per synchronisation, and 4 replicas diverged (RESULTS.md). Only rows
  some replica touched since the last sync travel: one all_reduce of a V-byte mask per matrix
  agrees on them (few of syn0's rows, most of syn1neg's: noise words spread wide; the shares
  are in docs/distributed.md).
- Threads. Each CPU rank runs `params.threads` Hogwild threads on its own chunks; under column
  partitioning thread t of every rank of a group takes the same chunks, with the same seed and
  its own process group, so its all_reduces pair up.

Per-rank checkpoints are written after every epoch (DIR/checkpoints/rank*-epoch*.pt) and a rerun
with resume=True continues from the last epoch every rank finished. The final vectors are gathered
block by block into a file-backed array on rank 0 and written as DIR/vectors.txt, so no rank ever
holds the full V x D matrix in memory, and as DIR/vectors.npz (native) as a single process does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from upvote.embeddings.corpus import EncodedCorpus
from upvote.embeddings.engines.batched import (
    BATCH_WORDS,
    batched_workers,
    load_checkpoint,
    run_epoch,
    save_checkpoint,
)
from upvote.embeddings.engines.common import Progress, Schedule, format_bytes
from upvote.embeddings.engines.torch_common import (
    chunks,
    count_words,
    init_vectors,
    resolve_device,
    step_words,
)
from upvote.embeddings.params import Word2VecParams
from upvote.embeddings.vectors import KeyedVectors

SYNC_EVERY = 256  # steps between synchronisations of the data-parallel replicas (RESULTS.md)
GATHER_ROWS = 65_536  # rows per all_gather when writing the final vectors


@dataclass(frozen=True)
class Layout:
    """Where a rank sits: which model group (data replica) and which column slice it holds."""

    rank: int
    world: int
    model_parallel: int

    @property
    def replicas(self) -> int:
        return self.world // self.model_parallel

    @property
    def replica(self) -> int:  # index of this rank's model group
        return self.rank // self.model_parallel

    @property
    def part(self) -> int:  # index of this rank's column slice
        return self.rank % self.model_parallel

    def columns(self, dim: int) -> range:
        width = dim // self.model_parallel
        return range(self.part * width, (self.part + 1) * width)


def check_layout(world: int, model_parallel: int, dim: int) -> None:
    if model_parallel < 1 or world % model_parallel:
        raise ValueError(
            f"--model-parallel {model_parallel} must divide the number of processes ({world})"
        )
    if dim % model_parallel:
        raise ValueError(f"--dim {dim} must be divisible by --model-parallel {model_parallel}")


def threads_per_rank(layout: Layout, threads: int, device: str, kernels: str | None) -> int:
    """Hogwild threads per rank (numba on CPU). Not with column slices *and* replicas: a thread
    waiting in its all_reduce could then wait on a rank paused for a replica synchronisation
    that waits on this rank's paused threads."""
    numba = device == "cpu" and kernels != "torch"
    mixed = layout.model_parallel > 1 and layout.replicas > 1
    return max(1, threads) if numba and not mixed else 1


def rank_parameter_bytes(vocab_size: int, dim: int, model_parallel: int) -> int:
    """Bytes of one rank's slices of syn0 and syn1neg (float32): 2 x V x D / M x 4."""
    return 2 * vocab_size * (dim // model_parallel) * 4


def describe_plan(
    world: int,
    model_parallel: int,
    params: Word2VecParams,
    vocab_size: int,
    local_ranks: int | None = None,
    kernels: str | None = None,
) -> list[str]:
    """What a torchrun job will run, in lines for the log: the layout, threads, memory per rank,
    and what its loss means (it is not on the single process's scale)."""
    layout = Layout(0, world, model_parallel)
    width = params.vector_size // model_parallel
    threads = threads_per_rank(layout, params.threads, params.device, kernels)
    per_rank = rank_parameter_bytes(vocab_size, params.vector_size, model_parallel)
    local = local_ranks or world
    k = params.negative
    return [
        f"distributed: {world} ranks = {layout.replicas} replica(s) (data parallel) x "
        f"{model_parallel} column slice(s) (model parallel, {width} of {params.vector_size} "
        f"dims each); {threads} thread(s) per rank; backend "
        f"{'nccl' if params.device == 'cuda' else 'gloo'}",
        f"distributed: memory per rank ~{format_bytes(per_rank)} of parameters "
        f"({vocab_size:,} words x {width} dims x 4 bytes x 2 matrices), "
        f"~{format_bytes(per_rank * local)} for the {local} rank(s) on this machine",
        f"distributed: the loss shown is rank 0's replica's mean per (centre, context) pair of "
        f"its 1 + {k} logistic losses summed (the batched engine); a single-process run shows "
        f"the mean per logistic example, about 1/{k + 1} of it: compare the two by their "
        "vectors, not their losses",
    ]


def _groups(
    layout: Layout, threads: int
) -> tuple[list[dist.ProcessGroup | None], dist.ProcessGroup | None]:
    """This rank's model groups (one per training thread: each thread's all_reduces pair up with
    the same thread's on the other ranks) and its replica group. Every rank must create every
    group, in the same order."""
    mp, world = layout.model_parallel, layout.world
    models: list[dist.ProcessGroup | None] = []
    replica = None
    for _ in range(threads):
        for g in range(layout.replicas):
            group = dist.new_group(list(range(g * mp, (g + 1) * mp)))
            if g == layout.replica:
                models.append(group)
    for p in range(mp):
        group = dist.new_group(list(range(p, world, mp)))
        if p == layout.part:
            replica = group
    return models, replica


def _checkpoint(out_dir: Path, rank: int, epoch: int) -> Path:
    return out_dir / "checkpoints" / f"rank{rank:04d}-epoch{epoch:04d}.pt"


def _resume_epoch(out_dir: Path, layout: Layout, epochs: int) -> int:
    """The last epoch for which *every* rank has a checkpoint (a kill can interrupt the saves)."""
    have = [e for e in range(1, epochs + 1) if _checkpoint(out_dir, layout.rank, e).exists()]
    last = torch.tensor([max(have, default=0)])
    dist.all_reduce(last, op=dist.ReduceOp.MIN)
    return int(last)


def _write_vectors(
    out_dir: Path, corpus: EncodedCorpus, syn0: torch.Tensor, layout: Layout, model
) -> None:
    """Gather the column slices of model group 0 into DIR/vectors.txt (word2vec text format) and
    DIR/vectors.npz (native), the files a single-process run writes."""
    if layout.replica != 0:
        return
    vocab, mp = corpus.vocab, layout.model_parallel
    full = None
    if layout.rank == 0:
        shape = (len(vocab), syn0.shape[1] * mp)
        full = np.lib.format.open_memmap(out_dir / "syn0.npy", "w+", np.float32, shape)
    for start in range(0, len(vocab), GATHER_ROWS):
        block = syn0[start : start + GATHER_ROWS].contiguous()
        parts = [torch.empty_like(block) for _ in range(mp)]
        dist.all_gather(parts, block, group=model)
        if full is not None:
            full[start : start + block.shape[0]] = torch.cat(parts, 1).cpu().numpy()
    if full is not None:
        full.flush()
        vectors = KeyedVectors(vocab.words, full, vocab.counts)
        vectors.save_word2vec_format(out_dir / "vectors.txt")
        vectors.save(out_dir / "vectors.npz")  # as the single process writes it


def parameter_bytes(*tensors: torch.Tensor) -> int:
    """Bytes of this rank's slices of syn0 and syn1neg: V x D / M of the full model for M slices."""
    return sum(t.element_size() * t.nelement() for t in tensors)


def train_distributed(
    corpus: EncodedCorpus,
    params: Word2VecParams,
    out_dir: str | Path,
    progress: Progress | None = None,
    *,
    model_parallel: int | None = None,
    resume: bool = False,
    batch_words: int = BATCH_WORDS,
    sync_every: int = SYNC_EVERY,
    kernels: str | None = None,
) -> dict:
    """Train on every rank of a torchrun job; rank 0 writes DIR/vectors.txt and DIR/vectors.npz.

    model_parallel: ranks per model group (default: all of them, pure column partitioning).
    kernels: "torch" runs the PyTorch step (what CUDA ranks run) on CPU too, so gloo tests cover
    the GPU path's code; by default CPU ranks run the numba step (engines.batched.batched_workers)
    in params.threads Hogwild threads (one when there are both column slices and replicas).
    progress: called on each rank with (words, loss), the words scaled by the number of replicas
    to estimate the whole job's progress (the CLI passes one only on rank 0). Returns this rank's
    statistics (layout, parameter bytes, words trained, mean loss of the last epoch).
    """
    if params.hs or params.negative <= 0:
        raise ValueError("distributed training does negative sampling only: negative > 0, no hs")
    device = resolve_device(params.device)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    world, rank = dist.get_world_size(), dist.get_rank()
    model_parallel = model_parallel or world
    check_layout(world, model_parallel, params.vector_size)
    layout = Layout(rank, world, model_parallel)
    threads = threads_per_rank(layout, params.threads, device.type, kernels)
    models, replica = _groups(layout, threads)
    out_dir = Path(out_dir)
    (out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)

    columns = layout.columns(params.vector_size)
    syn0, syn1 = init_vectors(len(corpus.vocab), params.vector_size, columns, params.seed, device)

    reduces = None
    if model_parallel > 1:
        reduces = [partial(dist.all_reduce, group=group) for group in models]
    # Same seed within a model group (identical batches), another one per replica.
    seed = params.seed * 7919 + layout.replica
    workers = batched_workers(corpus.vocab, params, syn0, syn1, seed, reduces, kernels)
    shards = list(corpus.shards())
    batch_words = step_words(shards, batch_words)
    # Chunk i goes to worker i mod (G x T): replica r's threads take workers r*T .. r*T + T - 1.
    parts = layout.replicas * len(workers)
    mine = range(layout.replica * len(workers), (layout.replica + 1) * len(workers))
    n_chunks = sum(-(-s.shape[0] // batch_words) for s in shards)
    common_steps = min(  # steps every replica takes in an epoch
        sum(len(range(r * len(workers) + t, n_chunks, parts)) for t in range(len(workers)))
        for r in range(layout.replicas)
    )
    per_epoch = sum(count_words(shards, batch_words, part, parts) for part in mine)
    lr_scale = layout.replicas  # averaging divides each replica's updates by G: step G x bigger
    schedule = Schedule(
        params.start_alpha * lr_scale, params.min_alpha * lr_scale, per_epoch * params.epochs
    )
    # Rows of syn0 / syn1neg this replica has touched since the last synchronisation.
    touched = [torch.zeros(len(corpus.vocab), dtype=torch.uint8, device=device) for _ in range(2)]

    def synchronise() -> None:
        """Every replica's slice becomes the replicas' mean (rows no replica touched are equal
        everywhere already and stay put)."""
        if layout.replicas == 1:
            return
        for tensor, mask in zip((syn0, syn1), touched, strict=True):
            dist.all_reduce(mask, op=dist.ReduceOp.MAX, group=replica)
            rows = mask.nonzero().squeeze(1)
            block = tensor.index_select(0, rows)
            dist.all_reduce(block, group=replica)
            tensor.index_copy_(0, rows, block.div_(layout.replicas))
            mask.zero_()

    steps = 0

    def after_step(batch) -> bool:
        """Mark the rows this step touched; True when the replicas are due to synchronise."""
        nonlocal steps
        steps += 1
        if layout.replicas > 1 and batch is not None:
            touched[0][batch.inputs] = 1
            touched[1][batch.targets.reshape(-1)] = 1
        return layout.replicas > 1 and steps <= common_steps and steps % sync_every == 0

    report = progress
    if progress is not None and layout.replicas > 1:  # show the job's words, not this replica's

        def report(words: int, loss: float) -> None:
            progress(words * layout.replicas, loss)

    first_epoch, done, loss = 0, 0, float("nan")
    if resume:
        first_epoch = _resume_epoch(out_dir, layout, params.epochs)
        if first_epoch:
            _, done = load_checkpoint(_checkpoint(out_dir, rank, first_epoch), workers)
    for epoch in range(first_epoch, params.epochs):
        steps = 0
        streams = [chunks(shards, batch_words, part, parts) for part in mine]
        done, loss = run_epoch(workers, streams, schedule, done, report, after_step, synchronise)
        synchronise()
        save_checkpoint(_checkpoint(out_dir, rank, epoch + 1), workers, epoch + 1, done)
        dist.barrier()
        _checkpoint(out_dir, rank, epoch).unlink(missing_ok=True)  # keep the last one only
    _write_vectors(out_dir, corpus, syn0, layout, models[0])
    dist.barrier()
    return {
        "rank": rank,
        "world": world,
        "model_parallel": model_parallel,
        "columns": [columns.start, columns.stop],
        "parameter_bytes": parameter_bytes(syn0, syn1),
        "threads": len(workers),
        "words": done,
        "loss": loss,
    }
