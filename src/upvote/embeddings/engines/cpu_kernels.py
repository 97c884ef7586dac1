"""The per-word CPU engine's numba kernels: word2vec.c's algorithm, one job of the corpus per call.

word2vec.c (Mikolov et al. 2013), step for step: sub-sampling of frequent words, a dynamic window
drawn per centre word, negative sampling from unigram**0.75 and/or hierarchical softmax, plain
SGD applied in place to syn0 / syn1neg / syn1. Skip-gram uses HogBatch (Ji et al. 2016): the
context words of one centre word share one draw of K noise words, so a window is one small
(contexts x (1 + K)) block of dot products and every output row is read and written once per
window instead of once per pair; docs/word2vec.md has the measurement that chose it. CBOW keeps
word2vec.c's per-word noise draws but hides the memory latency (see cbow_kernel).

Compiled with nogil=True: cpu.py runs them from several Python threads at once (Hogwild).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from upvote.embeddings.engines.primitives import (
    MAX_EXP,
    draw_noise,
    dynamic_window,
    prefetch_row,
    read_sentence,
    sigmoid_grad,
)


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
        g, example_loss = sigmoid_grad(f, 1 - codes[i], alpha)
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
        end, m, state = read_sentence(tokens, start, keep, sentence, state)
        words += end - start
        alpha = alpha0 + (alpha1 - alpha0) * start / n
        for pos in range(m):
            lo, hi, state = dynamic_window(pos, m, window, state)
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
                t, state = draw_noise(state, noise_prob, noise_alias)
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
                    g, example_loss = sigmoid_grad(f, labels[k], alpha)
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


LOOKAHEAD = 2  # words: CBOW draws a word's noise words this far ahead and prefetches their rows
RING = 4  # a power of two > LOOKAHEAD: the drawn-ahead noise words of the next words


@njit(inline="always")
def _draw_ahead(
    q, sentence, m, window, negative, ring, syn0, syn1neg, noise_prob, noise_alias, state
):
    """Draw word q's noise words into its ring slot and prefetch the rows word q will touch that
    are not in cache yet: its output rows (centre + noise) and the input row entering the window."""
    slot = q & (RING - 1)
    for k in range(negative):
        t, state = draw_noise(state, noise_prob, noise_alias)
        ring[slot, k] = t
        prefetch_row(syn1neg, t)
    if negative > 0:
        prefetch_row(syn1neg, sentence[q])
    if q + window < m:
        prefetch_row(syn0, sentence[q + window])
    return state


@njit(nogil=True, fastmath=True, cache=True)
def cbow_kernel(
    tokens, syn0, syn1neg, keep, noise_prob, noise_alias, window, negative, alpha0, alpha1, seed,
    syn1, codes, points, lengths, cbow_mean,
):  # fmt: skip
    """CBOW as word2vec.c: the (mean of the) context vectors predicts the centre word, against K
    noise words and/or along its Huffman path (hierarchical softmax, when syn1 has rows); the
    error goes back, unscaled, to every context row.

    Latency, not arithmetic, bounds it. The noise and centre rows of syn1neg are random rows of a
    table larger than the cache, so a word's noise words are drawn LOOKAHEAD words early and their
    rows prefetched while the words before it train (the same distribution as drawing them in
    place). And the scores of a word's 1 + K targets are all computed before any target row is
    updated, so the dot products overlap instead of each waiting on the previous update; as in
    HogBatch, a noise word drawn twice for one word is scored against its row before either
    update (word2vec.c would score the second against the updated row). Together with the
    branch-free draws of primitives.py: 2.0-2.2x its former words/s on one thread (1.7-1.9x on two),
    at the same loss and analogy accuracy. Sharing one draw of noise words across 2 or 4 consecutive
    words (HogBatch's trick, across centre words) was a further 10-20% faster but cost 1 to 2
    analogy points at 1 epoch: not done.
    """
    n = tokens.shape[0]
    dim = syn0.shape[1]
    sentence = np.empty(n, dtype=np.int32)
    neu1 = np.empty(dim, dtype=np.float32)
    neu1e = np.empty(dim, dtype=np.float32)
    targets = np.empty(negative + 1, dtype=np.int64)
    scores = np.empty(negative + 1, dtype=np.float32)
    grads = np.empty(negative + 1, dtype=np.float32)
    ring = np.empty((RING, max(negative, 1)), dtype=np.int64)
    state = seed
    loss = 0.0
    examples = 0
    words = 0
    start = 0
    while start < n:
        end, m, state = read_sentence(tokens, start, keep, sentence, state)
        words += end - start
        alpha = alpha0 + (alpha1 - alpha0) * start / n
        for q in range(min(LOOKAHEAD, m)):
            state = _draw_ahead(
                q, sentence, m, window, negative, ring, syn0, syn1neg, noise_prob, noise_alias,
                state,
            )  # fmt: skip
        for pos in range(m):
            if pos + LOOKAHEAD < m:
                state = _draw_ahead(
                    pos + LOOKAHEAD, sentence, m, window, negative, ring, syn0, syn1neg,
                    noise_prob, noise_alias, state,
                )  # fmt: skip
            lo, hi, state = dynamic_window(pos, m, window, state)
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
                scale = np.float32(1.0 / nc)
                for d in range(dim):
                    neu1[d] *= scale
            neu1e[:] = 0.0
            if syn1.shape[0] > 0:  # hierarchical softmax
                path_loss, path_examples = _hs_path(
                    neu1, neu1e, syn1, codes[centre], points[centre], lengths[centre], alpha
                )
                loss += path_loss
                examples += path_examples
            slot = pos & (RING - 1)
            nt = 0
            if negative > 0:
                targets[0] = centre
                nt = 1
                for k in range(negative):
                    t = ring[slot, k]
                    if t != centre:
                        targets[nt] = t
                        nt += 1
            # the scores of all targets first: independent dot products the CPU overlaps, where
            # score-then-update per target made each wait for the previous one's update
            for i in range(nt):
                t = targets[i]
                f = np.float32(0.0)
                for d in range(dim):
                    f += neu1[d] * syn1neg[t, d]
                scores[i] = f
            for i in range(nt):
                f = scores[i]
                g, example_loss = sigmoid_grad(f, 1 if i == 0 else 0, alpha)
                loss += example_loss
                # saturated: no update (see primitives.sigmoid_grad)
                grads[i] = g if -MAX_EXP < f < MAX_EXP else np.float32(0.0)
            examples += nt
            for i in range(nt):
                g = grads[i]
                if g == 0.0:
                    continue
                t = targets[i]
                for d in range(dim):  # one pass over the row: its old value into neu1e, then update
                    out = syn1neg[t, d]
                    neu1e[d] += g * out
                    syn1neg[t, d] = out + g * neu1[d]
            for j in range(lo, hi):
                if j != pos:
                    row = sentence[j]
                    for d in range(dim):
                        syn0[row, d] += neu1e[d]
        start = end + 1
    return loss, examples, words


@njit(nogil=True, fastmath=True, cache=True)
def merge_delta(shared, local, start, rows):
    """Add a thread's updates of rows [0, rows) to the shared table (shared += local - start),
    then start the thread's copy and its reference point again from the merged rows."""
    for i in range(rows):
        for d in range(shared.shape[1]):
            value = shared[i, d] + (local[i, d] - start[i, d])
            shared[i, d] = value
            local[i, d] = value
            start[i, d] = value


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
