"""The batched engine's sampler and step on CPU, compiled with numba (batched_torch.py on CUDA).

Distributed training (distributed.py) needs *batched* steps: under column partitioning every
example's dot product is split across ranks and summed by one all_reduce per step. In PyTorch a
512-word step on CPU is ~30 small tensor ops (gathers, bmm, unique, index_add_), far slower than
one numba thread of the per-word engine (benchmarks/torch_steps.py; benchmarks/RESULTS.md).
These kernels do the same work without the per-op overhead.

The step is the torch Step's arithmetic exactly (a test compares them on the same batch): every
gradient is computed from the vectors as they were at the start of the step, and a row hit more
than ROW_CAP times has its summed update scaled down to ROW_CAP updates' worth. The sampler draws
with word2vec.c's generator (primitives.py), so a checkpoint needs one integer of RNG state per
thread and the ranks of a model group, seeded alike, draw identical batches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from numba import njit

from upvote.embeddings.engines.primitives import (
    draw_noise,
    dynamic_window,
    logistic,
    read_sentence,
)
from upvote.embeddings.engines.torch_common import ROW_CAP, Batch
from upvote.embeddings.params import Word2VecParams
from upvote.embeddings.vocab import Vocab


@njit(nogil=True, cache=True)
def _sample(tokens, keep, noise_prob, noise_alias, window, negative, state):
    """One chunk's examples: (inputs, pair_centre, targets, rng state), as torch_common.Batch.

    Each document (ended by -1 or by the chunk's end) is sub-sampled; every kept word with at
    least one context word inside its dynamic window and its document becomes a centre, with
    `negative` noise words.
    """
    n = tokens.shape[0]
    sentence = np.empty(n, dtype=np.int64)
    inputs = np.empty(n * 2 * window, dtype=np.int64)
    pair_centre = np.empty(n * 2 * window, dtype=np.int64)
    targets = np.empty((n, 1 + negative), dtype=np.int64)
    pairs = centres = 0
    start = 0
    while start < n:
        end, m, state = read_sentence(tokens, start, keep, sentence, state)
        start = end + 1  # past the -1 that ended the document
        for pos in range(m):
            lo, hi, state = dynamic_window(pos, m, window, state)
            if hi - lo < 2:
                continue
            for c in range(lo, hi):
                if c != pos:
                    inputs[pairs] = sentence[c]
                    pair_centre[pairs] = centres
                    pairs += 1
            targets[centres, 0] = sentence[pos]
            for k in range(negative):
                targets[centres, 1 + k], state = draw_noise(state, noise_prob, noise_alias)
            centres += 1
    return inputs[:pairs], pair_centre[:pairs], targets[:centres], state


@njit(nogil=True, fastmath=True, cache=True)
def _scores(syn0, syn1, inputs, pair_centre, targets, sg, cbow_mean):
    """Dot products of every example with its 1 + K output rows: (scores, hidden).

    Skip-gram: one example per pair, hidden is syn0[inputs] (not copied: an empty array).
    CBOW: one example per centre, hidden[c] = sum (or mean) of its context rows of syn0.
    """
    dim = syn0.shape[1]
    width = targets.shape[1]
    if sg:
        scores = np.zeros((inputs.shape[0], width), dtype=np.float32)
        for p in range(inputs.shape[0]):
            row = inputs[p]
            for j in range(width):
                t = targets[pair_centre[p], j]
                f = np.float32(0.0)
                for d in range(dim):
                    f += syn0[row, d] * syn1[t, d]
                scores[p, j] = f
        return scores, np.empty((0, dim), dtype=np.float32)
    hidden = np.zeros((targets.shape[0], dim), dtype=np.float32)
    size = np.zeros(targets.shape[0], dtype=np.float32)
    for p in range(inputs.shape[0]):
        c = pair_centre[p]
        size[c] += 1
        for d in range(dim):
            hidden[c, d] += syn0[inputs[p], d]
    if cbow_mean:
        for c in range(hidden.shape[0]):
            for d in range(dim):
                hidden[c, d] /= size[c]
    scores = np.zeros((targets.shape[0], width), dtype=np.float32)
    for c in range(targets.shape[0]):
        for j in range(width):
            t = targets[c, j]
            f = np.float32(0.0)
            for d in range(dim):
                f += hidden[c, d] * syn1[t, d]
            scores[c, j] = f
    return scores, hidden


@njit(nogil=True, fastmath=True, cache=True)
def _apply(syn0, syn1, inputs, pair_centre, targets, scores, hidden, sg, lr, row_cap, hits):
    """SGD on the (summed) scores: every gradient from the step's starting vectors, rows capped.

    hits: int32 scratch of length V, all zero on entry and on return. Returns the summed loss.
    """
    dim = syn0.shape[1]
    examples, width = scores.shape
    loss = 0.0
    for e in range(examples):  # scores become word2vec.c's g = (label - sigmoid(f)) * alpha
        for j in range(width):
            sigmoid, example_loss = logistic(scores[e, j], j == 0)
            loss += example_loss
            scores[e, j] = ((1 if j == 0 else 0) - sigmoid) * lr
    # neu1e from syn1 before any output row moves.
    neu1e = np.zeros((examples, dim), dtype=np.float32)
    for e in range(examples):
        c = pair_centre[e] if sg else e
        for j in range(width):
            t = targets[c, j]
            g = scores[e, j]
            for d in range(dim):
                neu1e[e, d] += g * syn1[t, d]
    # Output rows; syn0 is still as the step found it, so hidden is too.
    for e in range(examples):
        c = pair_centre[e] if sg else e
        for j in range(width):
            hits[targets[c, j]] += 1
    for e in range(examples):
        c = pair_centre[e] if sg else e
        for j in range(width):
            t = targets[c, j]
            g = scores[e, j] * min(np.float32(1.0), row_cap / np.float32(hits[t]))
            if sg:
                row = inputs[e]
                for d in range(dim):
                    syn1[t, d] += g * syn0[row, d]
            else:
                for d in range(dim):
                    syn1[t, d] += g * hidden[e, d]
    for e in range(examples):
        c = pair_centre[e] if sg else e
        for j in range(width):
            hits[targets[c, j]] = 0
    # Input rows: every context word of an example gets that example's whole neu1e.
    for p in range(inputs.shape[0]):
        hits[inputs[p]] += 1
    for p in range(inputs.shape[0]):
        row = inputs[p]
        e = p if sg else pair_centre[p]
        scale = min(np.float32(1.0), row_cap / np.float32(hits[row]))
        for d in range(dim):
            syn0[row, d] += scale * neu1e[e, d]
    for p in range(inputs.shape[0]):
        hits[inputs[p]] = 0
    return loss


class NumbaSampler:
    """batched_torch.Sampler's batches (same distribution, word2vec.c's generator) on CPU."""

    device = torch.device("cpu")

    def __init__(self, vocab: Vocab, params: Word2VecParams, seed: int):
        self.keep = vocab.keep_probability(params.sample)
        self.noise_prob, self.noise_alias = vocab.noise_table(params.ns_exponent)
        self.window, self.negative = params.window, params.negative
        self.state = np.uint64((seed * 0x9E3779B97F4A7C15 + 1) % 2**64)  # spread small seeds

    def batch(self, tokens: torch.Tensor) -> Batch | None:
        inputs, pair_centre, targets, state = _sample(
            tokens.numpy(), self.keep, self.noise_prob, self.noise_alias,
            self.window, self.negative, self.state,
        )  # fmt: skip
        self.state = np.uint64(state)  # numba hands back a Python int: keep the type uint64
        if targets.shape[0] == 0:
            return None
        return Batch(
            torch.from_numpy(inputs), torch.from_numpy(pair_centre), torch.from_numpy(targets)
        )

    def get_state(self) -> torch.Tensor:
        """The generator's 64 bits as one int64 (what a checkpoint keeps)."""
        return torch.tensor([int(self.state.view(np.int64))])

    def set_state(self, state: torch.Tensor) -> None:
        self.state = np.int64(state[0]).view(np.uint64)


class NumbaStep:
    """batched_torch.Step on CPU: the same arithmetic in two compiled kernels around `reduce`."""

    def __init__(
        self,
        syn0: torch.Tensor,
        syn1neg: torch.Tensor,
        sg: bool,
        cbow_mean: bool,
        reduce: Callable[[torch.Tensor], None] | None = None,
        row_cap: float = ROW_CAP,
    ):
        self.syn0, self.syn1neg, self.sg, self.cbow_mean = syn0, syn1neg, sg, cbow_mean
        self.reduce, self.row_cap = reduce, np.float32(row_cap)
        self._hits = np.zeros(syn0.shape[0], dtype=np.int32)

    def __call__(self, batch: Batch, lr: float) -> tuple[float, int]:
        """One SGD step; returns (summed loss, number of examples)."""
        syn0, syn1 = self.syn0.numpy(), self.syn1neg.numpy()
        inputs, pair_centre = batch.inputs.numpy(), batch.pair_centre.numpy()
        targets = batch.targets.numpy()
        scores, hidden = _scores(syn0, syn1, inputs, pair_centre, targets, self.sg, self.cbow_mean)
        if self.reduce is not None:
            self.reduce(torch.from_numpy(scores))  # shares memory: summed in place
        loss = _apply(
            syn0, syn1, inputs, pair_centre, targets, scores, hidden, self.sg,
            np.float32(lr), self.row_cap, self._hits,
        )  # fmt: skip
        return float(loss), scores.shape[0]
