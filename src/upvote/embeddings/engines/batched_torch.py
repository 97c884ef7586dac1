"""The batched engine's sampler and step in plain PyTorch: what CUDA ranks of distributed training
run (CPU ranks run batched_numba.py, the same arithmetic without PyTorch's per-op overhead).

One step takes a chunk of the token stream and does, on the device, what word2vec.c does word by
word:

1. sub-sample frequent words and draw a dynamic window per centre word;
2. list the (centre, context) pairs of every window (documents are separated by -1 ids);
3. draw K noise words per centre word, shared by all the context words of its window (HogBatch,
   Ji et al. 2016): K draws per window instead of K per pair, fewer rows touched;
4. gather rows with index_select, score with bmm, take the sigmoid gradients;
5. scatter the updates with index_add_, a row's summed update scaled down to at most ROW_CAP
   single updates' worth.

Why step 5 caps: a step applies the summed gradients of thousands of pairs computed from the same
stale vectors. A frequent word (often a noise word) can be hit hundreds of times in one step and the
sum of its updates overshoots, up to NaN. Averaging instead (each row one update per step)
under-trains small vocabularies; the cap keeps sequential-SGD semantics for rows hit a few times
and bounds the rest. Even so, quality falls as steps grow, so the default step is small
(batched.BATCH_WORDS); docs/word2vec.md and benchmarks/RESULTS.md ("Distributed word2vec") have
the measurements.

Column partitioning (Ordentlich et al., CIKM 2016) needs one hook: `Step.reduce`, called on the
partial dot products before the sigmoid. Distributed training passes an all_reduce there; each rank
then holds and updates only its slice of the dimensions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from upvote.embeddings.engines.torch_common import ROW_CAP, Batch
from upvote.embeddings.params import Word2VecParams
from upvote.embeddings.vocab import Vocab


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


def add_capped(
    weight: torch.Tensor, rows: torch.Tensor, updates: torch.Tensor, cap: float = ROW_CAP
) -> None:
    """weight[r] += the sum of the updates aimed at row r in this step, scaled down to at most
    `cap` updates' worth when more arrive (see the module docstring)."""
    unique, inverse, counts = torch.unique(rows, return_inverse=True, return_counts=True)
    summed = torch.zeros(unique.shape[0], weight.shape[1], dtype=weight.dtype, device=weight.device)
    summed.index_add_(0, inverse, updates)
    summed *= (cap / counts.to(weight.dtype)).clamp_(max=1.0).unsqueeze(1)
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
    row_cap: float = ROW_CAP

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
        add_capped(syn1, out_rows, out_update, self.row_cap)
        add_capped(syn0, batch.inputs, in_update, self.row_cap)
        return float(loss), score.shape[0]
