"""What the torch-based engines share (batched steps, the Triton engine, distributed training).

- the token stream cut into chunks (memory-mapped shards in, one chunk in memory at a time);
- Batch, the training examples of one batched step, made by either sampler and consumed by either
  step (batched_torch.py, batched_numba.py);
- the device check and word2vec.c's initial vectors, per column slice.

Kept apart from common.py so that the per-word CPU engine never imports torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

MIN_STEPS = 64  # per epoch: a tiny corpus gets smaller steps rather than a handful of huge ones
ROW_CAP = 16.0  # a row moves at most this many single updates' worth per batched step


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
