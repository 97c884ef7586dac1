"""Word2vec on the GPU with word2vec.c's per-word SGD: one Triton kernel, thousands of sentences.

Why not big batched steps (batched.py)? A batched step computes thousands of updates from the
same stale vectors and sums them; frequent words then overshoot and quality collapses as steps
grow (docs/word2vec.md has the measurements). word2vec.c instead
applies each window's update before it reads the next one. This kernel keeps those semantics on
the GPU, as BlazingText does (Gupta & Khare 2017): every Triton program walks its own stretch of
the (sub-sampled) token stream word by word and updates syn0 / syn1neg in place, and thousands of
programs run at once, Hogwild style, like word2vec.c's threads. Per centre word, a program:

1. reads its window [lo, hi) and its K noise words, drawn for the whole chunk beforehand with
   torch on the device (sub-sampling, dynamic window clipped to the document, alias-table noise);
2. gathers the context rows [C, D] of syn0 and the centre + noise rows [T, D] of syn1neg;
3. skip-gram (HogBatch, Ji et al. 2016, as the CPU engine): scores = ctx @ out^T, one [C, T]
   block of logistic gradients, then neu1e = g @ out and out_update = g^T @ ctx, three small
   ``tl.dot``s; CBOW: the (mean) context vector against the T rows;
4. adds the updates to the rows with atomic adds (a window can hit a row twice: none is lost).

The learning rate decays linearly with the position in the corpus, as word2vec.c's. Like
word2vec.c's threads, programs do not wait for each other (Hogwild): a row another program is
updating can be read slightly stale; within a program every window sees the previous ones.

Runs on CUDA; on CPU only under Triton's interpreter (``TRITON_INTERPRET=1``, set before triton is
imported), where programs run one after another: exact sequential SGD, slow, used by the tests.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np
import torch
import triton
import triton.language as tl

from upvote.embeddings.corpus import EncodedCorpus
from upvote.embeddings.engines.common import Progress, Schedule, write_atomically
from upvote.embeddings.engines.torch_common import count_words, init_vectors, resolve_device
from upvote.embeddings.params import Word2VecParams

CHUNK_TOKENS = 1 << 23  # corpus tokens per launch (its random draws take ~50 bytes each)
PROGRAMS = 8192  # Triton programs per launch: concurrent "threads" walking the stream
# Scores are clipped to [-6, 6] as by word2vec.c's sigmoid table; saturated ones are not updated.
# (primitives.MAX_EXP's value, not imported: primitives needs numba, which GPU boxes may lack.)
MAX_EXP: tl.constexpr = tl.constexpr(6.0)


def interpreted() -> bool:
    """True when Triton runs kernels with its CPU interpreter (tests without a GPU)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


@triton.jit
def window_kernel(
    tokens,  # int32 [N]: sub-sampled ids, -1 between documents
    lo,  # int32 [N]: first context position of each centre (window drawn, document clipped)
    hi,  # int32 [N]: one past the last context position
    noise,  # int32 [N, negative]: noise words drawn for each centre
    n_tokens,
    syn0,  # float32 [V, DIM]
    syn1neg,  # float32 [V, DIM]
    losses,  # float32 [programs]: summed loss of each program
    examples,  # float32 [programs]: logistic examples of each program
    span,  # positions per program
    window,
    negative,
    alpha_start,
    alpha_step,  # learning rate change per position
    DIM: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_C: tl.constexpr,  # >= 2 * window + 1, a power of two >= 16
    BLOCK_T: tl.constexpr,  # >= 1 + negative, a power of two >= 16
    SG: tl.constexpr,
    CBOW_MEAN: tl.constexpr,
):
    pid = tl.program_id(0)
    first = pid * span
    last = tl.minimum(first + span, n_tokens)
    d = tl.arange(0, BLOCK_D)
    d_ok = d < DIM
    slot = tl.arange(0, BLOCK_C)  # context slot s holds position pos - window + s
    k = tl.arange(0, BLOCK_T)  # target 0 = the centre word, 1..negative = noise words
    is_noise = (k >= 1) & (k <= negative)
    loss = 0.0
    count = 0.0
    for pos in range(first, last):
        centre = tl.load(tokens + pos)
        j = pos - window + slot
        ctx_ok = (j >= tl.load(lo + pos)) & (j < tl.load(hi + pos)) & (j != pos)
        ctx = tl.load(tokens + j, mask=ctx_ok, other=0)
        n_ctx = tl.sum(ctx_ok.to(tl.float32), axis=0)
        drawn = tl.load(noise + pos * negative + (k - 1), mask=is_noise, other=-1)
        target = tl.where(k == 0, centre, drawn)
        # (scalars are broadcast before "&": Triton's interpreter mis-types scalar & block)
        t_ok = ((k == 0) | (is_noise & (drawn != centre))) & (n_ctx + 0.0 * k > 0)
        label = (k == 0).to(tl.float32)
        alpha = alpha_start + alpha_step * (pos * 1.0)

        ctx_ptr = syn0 + ctx.to(tl.int64)[:, None] * DIM + d[None, :]
        ctx_mask = ctx_ok[:, None] & d_ok[None, :]
        out_ptr = syn1neg + target.to(tl.int64)[:, None] * DIM + d[None, :]
        out_mask = t_ok[:, None] & d_ok[None, :]
        inp = tl.load(ctx_ptr, mask=ctx_mask, other=0.0)  # [C, D]
        out = tl.load(out_ptr, mask=out_mask, other=0.0)  # [T, D]
        if SG:
            # every (context, target) pair is one example; the window shares the noise words
            score = tl.dot(inp, tl.trans(out), input_precision="ieee")  # [C, T]
            learn = (score > -MAX_EXP) & (score < MAX_EXP)  # saturated: no update, as the CPU
            score = tl.minimum(tl.maximum(score, -MAX_EXP), MAX_EXP)
            sig = 1.0 / (1.0 + tl.exp(-score))
            pair_ok = ctx_ok[:, None] & t_ok[None, :]
            grad = tl.where(pair_ok & learn, (label[None, :] - sig) * alpha, 0.0)
            pair_loss = tl.where(label[None, :] > 0, -tl.log(sig), -tl.log(1.0 - sig))
            loss += tl.sum(tl.sum(tl.where(pair_ok, pair_loss, 0.0), axis=1), axis=0)
            count += tl.sum(tl.sum(pair_ok.to(tl.float32), axis=1), axis=0)
            neu1e = tl.dot(grad, out, input_precision="ieee")  # [C, D], from the old out rows
            out_update = tl.dot(tl.trans(grad), inp, input_precision="ieee")  # [T, D]
            tl.atomic_add(out_ptr, out_update, mask=out_mask, sem="relaxed")
            tl.atomic_add(ctx_ptr, neu1e, mask=ctx_mask, sem="relaxed")
        else:
            # CBOW: the (mean of the) context vectors predicts the centre word
            hidden = tl.sum(inp, axis=0)  # [D]
            if CBOW_MEAN:
                hidden = hidden / tl.maximum(n_ctx, 1.0)
            score = tl.sum(out * hidden[None, :], axis=1)  # [T]
            learn = (score > -MAX_EXP) & (score < MAX_EXP)
            score = tl.minimum(tl.maximum(score, -MAX_EXP), MAX_EXP)
            sig = 1.0 / (1.0 + tl.exp(-score))
            grad = tl.where(t_ok & learn, (label - sig) * alpha, 0.0)
            t_loss = tl.where(label > 0, -tl.log(sig), -tl.log(1.0 - sig))
            loss += tl.sum(tl.where(t_ok, t_loss, 0.0), axis=0)
            count += tl.sum(t_ok.to(tl.float32), axis=0)
            neu1e = tl.sum(grad[:, None] * out, axis=0)  # [D]
            tl.atomic_add(out_ptr, grad[:, None] * hidden[None, :], mask=out_mask, sem="relaxed")
            # every context row gets the whole error, as in word2vec.c
            tl.atomic_add(
                ctx_ptr, neu1e[None, :] + tl.zeros_like(inp), mask=ctx_mask, sem="relaxed"
            )
    tl.store(losses + pid, loss)
    tl.store(examples + pid, count)


class Kernel:
    """The constant inputs of every launch (tables on the device, block sizes)."""

    def __init__(self, corpus: EncodedCorpus, params: Word2VecParams, device: torch.device):
        vocab = corpus.vocab
        prob, alias = vocab.noise_table(params.ns_exponent)
        self.keep = torch.from_numpy(vocab.keep_probability(params.sample)).to(device)
        self.noise_prob = torch.from_numpy(np.ascontiguousarray(prob, np.float32)).to(device)
        self.noise_alias = torch.from_numpy(np.ascontiguousarray(alias, np.int64)).to(device)
        self.params, self.device = params, device
        self.blocks = {
            "DIM": params.vector_size,
            "BLOCK_D": triton.next_power_of_2(params.vector_size),
            "BLOCK_C": max(16, triton.next_power_of_2(2 * params.window + 1)),
            "BLOCK_T": max(16, triton.next_power_of_2(1 + params.negative)),
            "SG": params.sg,
            "CBOW_MEAN": params.cbow_mean,
        }

    def prepare(
        self, chunk: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every random draw of a chunk, vectorised on the device: (tokens, lo, hi, noise).

        Frequent words are dropped with word2vec.c's probability (separators stay); each centre
        gets its dynamic window clipped to its document ([lo, hi), empty for separators) and K
        noise words from the alias table. The kernel then only reads them.
        """
        dev, p = self.device, self.params
        draw = torch.rand(chunk.shape[0], generator=generator, device=dev)
        tokens = chunk[(chunk < 0) | (draw < self.keep[chunk.clamp(min=0)])]
        n = tokens.shape[0]
        index = torch.arange(n, device=dev)
        separator = tokens < 0
        doc_start = torch.cummax(torch.where(separator, index, -1), 0).values + 1
        after = torch.where(separator, index, n).flip(0)
        doc_end = torch.cummin(after, 0).values.flip(0)
        reach = p.window - torch.randint(0, p.window, (n,), generator=generator, device=dev)
        lo = torch.maximum(doc_start, index - reach)
        hi = torch.where(separator, lo, torch.minimum(doc_end, index + reach + 1))
        column = torch.randint(0, len(self.noise_prob), (n, p.negative), generator=generator,
                               device=dev)  # fmt: skip
        coin = torch.rand(n, p.negative, generator=generator, device=dev)
        noise = torch.where(coin < self.noise_prob[column], column, self.noise_alias[column])
        as_int32 = (t.to(torch.int32).contiguous() for t in (tokens, lo, hi, noise))
        return tuple(as_int32)

    def launch(
        self, syn0: torch.Tensor, syn1neg: torch.Tensor, chunk: torch.Tensor,
        alpha: tuple[float, float], generator: torch.Generator, programs: int,
    ) -> tuple[float, float]:  # fmt: skip
        """Train on a chunk of token ids with the learning rate going from alpha[0] to alpha[1];
        returns (summed loss, examples)."""
        tokens, lo, hi, noise = self.prepare(chunk, generator)
        n = tokens.shape[0]
        if n == 0:
            return 0.0, 0.0
        span = triton.cdiv(n, min(programs, n))
        grid = triton.cdiv(n, span)
        losses = torch.zeros(grid, dtype=torch.float32, device=self.device)
        examples = torch.zeros(grid, dtype=torch.float32, device=self.device)
        p = self.params
        window_kernel[(grid,)](
            tokens, lo, hi, noise, n, syn0, syn1neg, losses, examples, span, p.window,
            p.negative, alpha[0], (alpha[1] - alpha[0]) / n, **self.blocks,
        )  # fmt: skip
        return float(losses.sum()), float(examples.sum())


def _launch_seed(seed: int, epoch: int, chunk: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, chunk]).generate_state(1)[0] >> 1)


def train_triton(
    corpus: EncodedCorpus,
    params: Word2VecParams,
    progress: Progress | None = None,
    *,
    checkpoint: Path | None = None,
    chunk_tokens: int = CHUNK_TOKENS,
    programs: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Train on an encoded corpus; returns float32 numpy (syn0, syn1neg).

    With ``checkpoint``, resumes from it when present and rewrites it after every epoch. Every
    launch draws from its own seed (seed, epoch, chunk), so a resumed run repeats the same draws.
    """
    programs = programs or PROGRAMS
    device = resolve_device(params.device)
    if device.type != "cuda" and not interpreted():
        raise RuntimeError("the Triton engine runs on CUDA (or under TRITON_INTERPRET=1)")
    dim = params.vector_size
    syn0, syn1neg = init_vectors(len(corpus.vocab), dim, range(dim), params.seed, device)
    kernel = Kernel(corpus, params, device)
    shards = list(corpus.shards())
    per_epoch = count_words(shards, chunk_tokens)
    schedule = Schedule(params.start_alpha, params.min_alpha, per_epoch * params.epochs)
    first_epoch, done = 0, 0
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True)
        syn0.copy_(state["syn0"])
        syn1neg.copy_(state["syn1neg"])
        first_epoch, done = int(state["epoch"]), int(state["done_words"])
    generator = torch.Generator(device=device)
    for epoch in range(first_epoch, params.epochs):
        loss_sum, count = 0.0, 0.0
        chunk_index = 0
        for shard in shards:
            for start in range(0, shard.shape[0], chunk_tokens):
                raw = np.asarray(shard[start : start + chunk_tokens])
                words = int((raw >= 0).sum())
                generator.manual_seed(_launch_seed(params.seed, epoch, chunk_index))
                chunk = torch.from_numpy(raw.astype(np.int64)).to(device)
                alpha = (schedule.lr(done), schedule.lr(done + words))
                loss, n = kernel.launch(syn0, syn1neg, chunk, alpha, generator, programs)
                loss_sum, count = loss_sum + loss, count + n
                done += words
                chunk_index += 1
                if progress is not None:
                    progress(words, loss_sum / max(count, 1.0))
        if checkpoint is not None:
            state = {"syn0": syn0.cpu(), "syn1neg": syn1neg.cpu(), "epoch": epoch + 1}
            state["done_words"] = done
            write_atomically(checkpoint, partial(torch.save, state))
    return syn0.cpu().numpy(), syn1neg.cpu().numpy()
