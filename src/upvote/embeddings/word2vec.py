"""The CPU word2vec engine: numba kernels run by Hogwild threads over memory-mapped id shards.

word2vec.c's algorithm (Mikolov et al. 2013), step for step: sub-sampling of frequent words, a
dynamic window drawn per centre word, negative sampling from unigram**0.75, a learning rate that
decays linearly with global progress, plain SGD applied in place to syn0 / syn1neg.

Skip-gram uses HogBatch (Ji et al. 2016): the context words of one centre word share one draw of K
noise words, so a window is one small (contexts x (1 + K)) block of dot products and every output
row is read and written once per window instead of once per pair. docs/word2vec.md has the
measurement that chose it over per-pair updates.

Threads: each epoch is cut into jobs of ~JOB_WORDS tokens at document boundaries; `threads` Python
threads take jobs from a queue and call a kernel compiled with nogil=True, so they run in parallel
on the shared arrays without locks (Hogwild, as word2vec.c and gensim do). Each job seeds its own
random generator from (seed, epoch, job), and its learning rate depends only on its position in the
corpus: one thread and a fixed seed give bit-identical vectors, and a run resumed from an epoch
checkpoint ends exactly where an uninterrupted one does.
"""

from __future__ import annotations

import json
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
from numba import njit

from upvote.embeddings.corpus import EncodedCorpus, encode_corpus, iter_documents
from upvote.embeddings.params import Word2VecParams
from upvote.embeddings.vectors import KeyedVectors

JOB_WORDS = 20_000
MAX_EXP = 6.0  # sigmoid arguments are clipped to [-6, 6], as word2vec.c's table does
TABLE_SIZE = 1000
_X = (np.arange(TABLE_SIZE) / TABLE_SIZE * 2 - 1) * MAX_EXP
_SIGMOID = (1 / (1 + np.exp(-_X))).astype(np.float32)
_LOG_SIGMOID = np.log(_SIGMOID).astype(np.float32)
_LOG_1M_SIGMOID = np.log(1 - _SIGMOID).astype(np.float32)
CHECKPOINT = "checkpoint.npz"
GPU_CHECKPOINT = "checkpoint-gpu.pt"  # the Triton engine's own format (--device cuda)

Progress = Callable[[int, float], None]  # (corpus words done since the last call, mean loss)

# word2vec.c's linear congruential generator: cheap, and identical on every platform. Unlike
# word2vec.c we use only its high bits: the low bits of an LCG repeat with short periods.
_LCG_A = np.uint64(25214903917)
_LCG_C = np.uint64(11)
_SHIFT = np.uint64(16)
_SHIFT40 = np.uint64(40)


@njit(inline="always")
def _next(state):
    return state * _LCG_A + _LCG_C


@njit(inline="always")
def _draw_noise(state, noise_prob, noise_alias):
    """A noise word from the alias table (a column, then a coin); returns (word, rng state).

    Both draws use the generator's high bits: an LCG's low bits repeat with short periods.
    """
    state = _next(state)
    column = np.int64((state >> _SHIFT) % np.uint64(noise_prob.shape[0]))
    state = _next(state)
    if np.float32(state >> _SHIFT40) / np.float32(16777216.0) < noise_prob[column]:
        return column, state
    return np.int64(noise_alias[column]), state


@njit(inline="always")
def _sigmoid_grad(f, label, alpha):
    """(gradient scale, loss) of one logistic example: g = (label - sigmoid(f)) * alpha.

    Sigmoid and log-sigmoid come from 1,000-entry tables over [-6, 6] as in word2vec.c: exp and
    log per example cost ~40% of skip-gram's time (measured), the tables almost nothing. The
    kernels skip the update of a saturated example (|f| >= 6) as gensim does, where word2vec.c
    applies the clipped gradient: on the full text8-style corpus, 1 epoch, skipping raised CBOW's
    analogy accuracy by 0.4-0.6 point (3 seeds) and skip-gram's by 0.15-0.3 (2 seeds).
    """
    if f <= -MAX_EXP:
        i = 0
    elif f >= MAX_EXP:
        i = TABLE_SIZE - 1
    else:
        i = int((f + MAX_EXP) * (TABLE_SIZE / MAX_EXP / 2))
    if label == 1:
        return np.float32((1.0 - _SIGMOID[i]) * alpha), -_LOG_SIGMOID[i]
    return np.float32(-_SIGMOID[i] * alpha), -_LOG_1M_SIGMOID[i]


@njit(inline="always")
def _sentence(tokens, start, keep, sentence, state):
    """The document starting at tokens[start] (it ends at a -1 or the job's end), sub-sampled.

    Copies the kept words into sentence; returns (end, kept length, rng state).
    """
    end = start
    m = 0
    while end < tokens.shape[0] and tokens[end] >= 0:
        w = tokens[end]
        end += 1
        p = keep[w]
        if p < 1.0:
            state = _next(state)
            if p < np.float32(state >> _SHIFT40) / np.float32(16777216.0):
                continue
        sentence[m] = w
        m += 1
    return end, m, state


@njit(inline="always")
def _window(pos, m, window, state):
    """word2vec.c's dynamic window around pos: a random shrink b in [0, window); (lo, hi, state)."""
    state = _next(state)
    b = np.int64((state >> _SHIFT) % np.uint64(window))
    return max(0, pos - window + b), min(m, pos + window + 1 - b), state


@njit(inline="always")
def _hs_path(l1, neu1e, syn1, codes, points, length, alpha):
    """Hierarchical softmax for one input vector l1 along one word's Huffman path: every inner
    node is a logistic example, updated at once; its error is added to neu1e. (loss, examples)"""
    loss = 0.0
    for i in range(length):
        node = points[i]
        f = np.float32(0.0)
        for d in range(l1.shape[0]):
            f += l1[d] * syn1[node, d]
        g, example_loss = _sigmoid_grad(f, 1 - codes[i], alpha)
        loss += example_loss
        if f <= -MAX_EXP or f >= MAX_EXP:
            continue  # saturated: no update, as word2vec.c and gensim
        for d in range(l1.shape[0]):
            neu1e[d] += g * syn1[node, d]
        for d in range(l1.shape[0]):
            syn1[node, d] += g * l1[d]
    return loss, length


@njit(nogil=True, fastmath=True, cache=True)
def sg_kernel(
    tokens, syn0, syn1neg, keep, noise_prob, noise_alias, window, negative, alpha0, alpha1, seed,
    syn1, codes, points, lengths,
):  # fmt: skip
    """Skip-gram over one job; returns (loss, examples, words).

    Negative sampling (negative > 0) uses HogBatch; hierarchical softmax (syn1 with rows, the
    Huffman paths of `huffman`) follows word2vec.c: every context word walks the centre
    word's path, each inner node updated at once. Both can be on, as in word2vec.c.
    """
    n = tokens.shape[0]
    dim = syn0.shape[1]
    sentence = np.empty(n, dtype=np.int32)
    targets = np.empty(negative + 1, dtype=np.int64)
    labels = np.zeros(negative + 1, dtype=np.int64)
    labels[0] = 1
    contexts = np.empty(2 * window, dtype=np.int64)
    grads = np.empty((2 * window, negative + 1), dtype=np.float32)
    neu1e = np.empty((2 * window, dim), dtype=np.float32)
    state = seed
    loss = 0.0
    examples = 0
    words = 0
    start = 0
    while start < n:
        end, m, state = _sentence(tokens, start, keep, sentence, state)
        words += end - start
        alpha = alpha0 + (alpha1 - alpha0) * start / n
        for pos in range(m):
            lo, hi, state = _window(pos, m, window, state)
            centre = sentence[pos]
            nc = 0
            for j in range(lo, hi):
                if j != pos:
                    contexts[nc] = sentence[j]
                    nc += 1
            if nc == 0:
                continue
            neu1e[:nc] = 0.0
            if syn1.shape[0] > 0:  # hierarchical softmax
                for c in range(nc):
                    path_loss, path_examples = _hs_path(
                        syn0[contexts[c]], neu1e[c], syn1, codes[centre], points[centre],
                        lengths[centre], alpha,
                    )  # fmt: skip
                    loss += path_loss
                    examples += path_examples
            if negative == 0:
                for c in range(nc):
                    row = contexts[c]
                    for d in range(dim):
                        syn0[row, d] += neu1e[c, d]
                continue
            targets[0] = centre
            for k in range(1, negative + 1):
                t, state = _draw_noise(state, noise_prob, noise_alias)
                targets[k] = -1 if t == centre else t
            # the (contexts x targets) block of gradient scales, from the vectors before the update
            for c in range(nc):
                row = contexts[c]
                for k in range(negative + 1):
                    t = targets[k]
                    if t < 0:
                        grads[c, k] = 0.0
                        continue
                    f = np.float32(0.0)
                    for d in range(dim):
                        f += syn0[row, d] * syn1neg[t, d]
                    g, example_loss = _sigmoid_grad(f, labels[k], alpha)
                    grads[c, k] = g if -MAX_EXP < f < MAX_EXP else 0.0  # saturated: skip
                    loss += example_loss
                    examples += 1
            # input errors from the old output rows: neu1e[c] = sum_k g[c, k] * syn1neg[t_k]
            for c in range(nc):
                for k in range(negative + 1):
                    t = targets[k]
                    if t >= 0:
                        g = grads[c, k]
                        for d in range(dim):
                            neu1e[c, d] += g * syn1neg[t, d]
            # output rows from the old input rows: syn1neg[t_k] += sum_c g[c, k] * syn0[c]
            for k in range(negative + 1):
                t = targets[k]
                if t < 0:
                    continue
                for c in range(nc):
                    g = grads[c, k]
                    row = contexts[c]
                    for d in range(dim):
                        syn1neg[t, d] += g * syn0[row, d]
            for c in range(nc):
                row = contexts[c]
                for d in range(dim):
                    syn0[row, d] += neu1e[c, d]
        start = end + 1
    return loss, examples, words


@njit(nogil=True, fastmath=True, cache=True)
def cbow_kernel(
    tokens,
    syn0,
    syn1neg,
    keep,
    noise_prob,
    noise_alias,
    window,
    negative,
    alpha0,
    alpha1,
    seed,
    syn1,
    codes,
    points,
    lengths,
    cbow_mean,
):
    """CBOW as word2vec.c: the (mean of the) context vectors predicts the centre word, against K
    noise words and/or along its Huffman path (hierarchical softmax, when syn1 has rows); the
    error goes back, unscaled, to every context row."""
    n = tokens.shape[0]
    dim = syn0.shape[1]
    sentence = np.empty(n, dtype=np.int32)
    neu1 = np.empty(dim, dtype=np.float32)
    neu1e = np.empty(dim, dtype=np.float32)
    state = seed
    loss = 0.0
    examples = 0
    words = 0
    start = 0
    while start < n:
        end, m, state = _sentence(tokens, start, keep, sentence, state)
        words += end - start
        alpha = alpha0 + (alpha1 - alpha0) * start / n
        for pos in range(m):
            lo, hi, state = _window(pos, m, window, state)
            centre = sentence[pos]
            neu1[:] = 0.0
            nc = 0
            for j in range(lo, hi):
                if j != pos:
                    row = sentence[j]
                    for d in range(dim):
                        neu1[d] += syn0[row, d]
                    nc += 1
            if nc == 0:
                continue
            if cbow_mean:
                for d in range(dim):
                    neu1[d] /= nc
            neu1e[:] = 0.0
            if syn1.shape[0] > 0:  # hierarchical softmax
                path_loss, path_examples = _hs_path(
                    neu1, neu1e, syn1, codes[centre], points[centre], lengths[centre], alpha
                )
                loss += path_loss
                examples += path_examples
            for k in range(negative + 1 if negative > 0 else 0):
                if k == 0:
                    t = centre
                    label = 1
                else:
                    t, state = _draw_noise(state, noise_prob, noise_alias)
                    if t == centre:
                        continue
                    label = 0
                f = np.float32(0.0)
                for d in range(dim):
                    f += neu1[d] * syn1neg[t, d]
                g, example_loss = _sigmoid_grad(f, label, alpha)
                loss += example_loss
                examples += 1
                if f <= -MAX_EXP or f >= MAX_EXP:
                    continue  # saturated: no update (see _sigmoid_grad)
                for d in range(dim):
                    neu1e[d] += g * syn1neg[t, d]
                for d in range(dim):
                    syn1neg[t, d] += g * neu1[d]
            for j in range(lo, hi):
                if j != pos:
                    row = sentence[j]
                    for d in range(dim):
                        syn0[row, d] += neu1e[d]
        start = end + 1
    return loss, examples, words


@njit(cache=True)
def huffman(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """word2vec.c's Huffman tree for hierarchical softmax: (codes, points, lengths).

    ``counts`` descend (vocabulary order). Word w's path from the root has lengths[w] inner nodes
    points[w, :lengths[w]] (rows of syn1, 0 = the root) and turns codes[w, :lengths[w]] (0/1).
    Frequent words get short paths. Built as word2vec.c's CreateBinaryTree: with sorted counts,
    two pointers find the two smallest nodes in O(1), so the tree takes O(V).
    """
    n = counts.shape[0]
    if n == 1:  # a one-word vocabulary: a single turn at the root
        return np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.int32), np.ones(1, np.int32)
    weight = np.empty(2 * n, np.int64)
    weight[:n] = counts
    weight[n:] = np.iinfo(np.int64).max // 4
    parent = np.zeros(2 * n, np.int64)
    turn = np.zeros(2 * n, np.uint8)
    leaf, inner = n - 1, n  # the next smallest leaf (counts descend) and inner node
    for a in range(n - 1):
        smallest = np.empty(2, np.int64)
        for m in range(2):
            if leaf >= 0 and weight[leaf] < weight[inner]:
                smallest[m] = leaf
                leaf -= 1
            else:
                smallest[m] = inner
                inner += 1
        weight[n + a] = weight[smallest[0]] + weight[smallest[1]]
        parent[smallest[0]] = n + a
        parent[smallest[1]] = n + a
        turn[smallest[1]] = 1
    root = 2 * n - 2
    lengths = np.zeros(n, np.int32)
    for w in range(n):
        node, depth = w, 0
        while node != root:
            node = parent[node]
            depth += 1
        lengths[w] = depth
    width = lengths.max()
    codes = np.zeros((n, width), np.uint8)
    points = np.zeros((n, width), np.int32)
    for w in range(n):
        node, i = w, lengths[w] - 1
        while node != root:  # walk up, filling the path from its end
            codes[w, i] = turn[node]
            points[w, i] = root - parent[node]  # inner node n + a -> row n - 2 - a; root -> 0
            node = parent[node]
            i -= 1
    return codes, points, lengths


def _job_bounds(shard: np.ndarray, job_words: int) -> list[tuple[int, int]]:
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


def _job_seed(seed: int, epoch: int, job: int) -> np.uint64:
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
    jobs = [(s, a, b) for s, shard in enumerate(shards) for a, b in _job_bounds(shard, job_words)]
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

    def worker() -> None:
        while not errors:
            try:
                j, (s, a, b) = todo.get_nowait()
            except queue.Empty:
                return
            tokens = np.ascontiguousarray(shards[s][a:b])
            common = (
                tokens, syn0, syn1neg, keep, noise_prob, noise_alias, params.window,
                params.negative, alpha_at(s, a), alpha_at(s, b), _job_seed(params.seed, epoch, j),
                syn1, codes, points, lengths,
            )  # fmt: skip
            try:
                if params.sg:
                    loss, examples, words = sg_kernel(*common)
                else:
                    loss, examples, words = cbow_kernel(*common, params.cbow_mean)
            except BaseException as error:  # surface a worker's failure in the main thread
                errors.append(error)
                return
            with lock:
                totals["loss"] += loss
                totals["examples"] += examples
                totals["words"] += words
                if progress is not None:
                    progress(words, totals["loss"] / max(totals["examples"], 1))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(params.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return totals["loss"] / max(totals["examples"], 1)


def _save_checkpoint(directory: Path, weights: Weights, params: Word2VecParams, epoch, losses):
    """Write checkpoint.npz atomically (temp file + rename): a kill never leaves half a file."""
    directory.mkdir(parents=True, exist_ok=True)
    state = json.dumps({"epochs_done": epoch, "params": params.to_dict(), "losses": losses})
    with tempfile.NamedTemporaryFile(dir=directory, suffix=".npz.tmp", delete=False) as f:
        np.savez(f, **weights, state=np.array(state))
    os.replace(f.name, directory / CHECKPOINT)


def load_checkpoint(directory: Path) -> tuple[Weights, dict] | None:
    """(weights, state) of the checkpoint in ``directory``, or None when there is none."""
    path = Path(directory) / CHECKPOINT
    if not path.exists():
        return None
    with np.load(path) as data:
        state = json.loads(str(data["state"]))
        return {name: data[name] for name in data.files if name != "state"}, state


def _resolve_params(params: Word2VecParams | None, overrides: dict) -> Word2VecParams:
    names = {f.name for f in fields(Word2VecParams)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"unknown word2vec parameter(s) {unknown}; known: {sorted(names)}")
    return replace(params or Word2VecParams(), **overrides)


def _as_encoded(corpus, params: Word2VecParams, workdir: Path) -> EncodedCorpus:
    """Encode a text file path or an iterable of token lists; pass an EncodedCorpus through."""
    if isinstance(corpus, EncodedCorpus):
        return corpus
    if isinstance(corpus, str | os.PathLike):
        from upvote.tokenizer import WordTokenizer

        documents: Iterable = iter_documents(corpus)
        tokenize = WordTokenizer().tokenize
    else:
        documents, tokenize = corpus, None
    return encode_corpus(
        documents,
        workdir,
        min_count=params.min_count,
        max_vocab=params.max_vocab,
        tokenize=tokenize,
    )


def train(
    corpus,
    params: Word2VecParams | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool | Progress = False,
    **overrides,
) -> KeyedVectors:
    """Train word2vec, gensim style: `train(sentences, vector_size=100, sg=True, epochs=5)`.

    corpus: an iterable of token lists (re-iterable, like gensim `sentences`), a text file path
    (text8 style), or an EncodedCorpus. checkpoint_dir: where a checkpoint is written after every
    epoch; resume=True continues from it. progress: True for a progress bar, or a callback
    (words done, mean loss).
    """
    params = _resolve_params(params, overrides)
    with tempfile.TemporaryDirectory(prefix="upvote-corpus-") as workdir:
        encoded = _as_encoded(corpus, params, Path(workdir))
        vocab = encoded.vocab
        if params.device == "cuda":
            syn0 = _train_gpu(encoded, params, checkpoint_dir, resume, progress)
        else:
            syn0 = _train_cpu(encoded, params, checkpoint_dir, resume, progress)
    return KeyedVectors(vocab.words, syn0, vocab.counts)


def _train_gpu(
    corpus: EncodedCorpus,
    params: Word2VecParams,
    checkpoint_dir: str | Path | None,
    resume: bool,
    progress: bool | Progress,
) -> np.ndarray:
    """The Triton engine (triton_engine.py): word2vec.c's per-word SGD in thousands of programs."""
    from upvote.embeddings.torch_engine import resolve_device

    resolve_device(params.device)  # a clear error without a GPU, before triton is imported
    if params.hs or params.negative <= 0:
        raise ValueError("--device cuda does negative sampling only: negative > 0, no hs")
    try:
        from upvote.embeddings.triton_engine import train_triton
    except ImportError as error:
        raise RuntimeError(f"--device cuda needs Triton (pip install triton): {error}") from None

    checkpoint = Path(checkpoint_dir) / GPU_CHECKPOINT if checkpoint_dir else None
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        if not resume:
            checkpoint.unlink(missing_ok=True)  # a fresh run: train_triton resumes from it
    with ProgressBar(progress, corpus.n_tokens * params.epochs) as callback:
        syn0, _ = train_triton(corpus, params, callback, checkpoint=checkpoint)
    return syn0


def _train_cpu(
    corpus: EncodedCorpus,
    params: Word2VecParams,
    checkpoint_dir: str | Path | None,
    resume: bool,
    progress: bool | Progress,
) -> np.ndarray:
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
                _save_checkpoint(Path(checkpoint_dir), weights, params, epoch + 1, losses)
    return weights["syn0"]


class ProgressBar:
    """A rich progress bar with words/s and the running loss, as a Progress callback."""

    def __init__(self, progress: bool | Progress, total: int, completed: int = 0) -> None:
        self.user = progress if callable(progress) else None
        self.show = progress is True
        self.total, self.completed = total, completed

    def __enter__(self) -> Progress:
        if self.show:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("word2vec"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                TextColumn("{task.fields[wps]:>8} words/s"),
                TextColumn("loss {task.fields[loss]:.4f}"),
                TimeRemainingColumn(),
            )
            self.task = self.bar.add_task(
                "train", total=self.total, completed=self.completed, wps="-", loss=float("nan")
            )
            self.bar.start()
        self.t0, self.words = time.perf_counter(), 0
        return self._update

    def _update(self, words: int, loss: float) -> None:
        self.words += words
        if self.user is not None:
            self.user(words, loss)
        if self.show:
            wps = self.words / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.update(self.task, advance=words, wps=f"{wps / 1e3:,.0f}k", loss=loss)

    def __exit__(self, *exc) -> None:
        if self.show:
            self.bar.stop()
