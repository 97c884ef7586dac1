"""word2vec.c's building blocks as numba functions, shared by every numba kernel.

The per-word CPU engine (cpu_kernels.py) and the batched CPU step (batched_numba.py) draw from the
same generator with the same sub-sampling, windows and noise words, so these live below both. All
are ``inline="always"``: the kernels that call them compile them in, as if written in place.
numba's on-disk cache (cache=True) checks only the kernel's own file: after editing this one,
delete the engines' __pycache__/*.nbi and *.nbc, or the kernels keep the old code.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

MAX_EXP = 6.0  # sigmoid arguments are clipped to [-6, 6], as word2vec.c's table does
TABLE_SIZE = 1000
_X = (np.arange(TABLE_SIZE) / TABLE_SIZE * 2 - 1) * MAX_EXP
SIGMOID = (1 / (1 + np.exp(-_X))).astype(np.float32)
LOG_SIGMOID = np.log(SIGMOID).astype(np.float32)
LOG_1M_SIGMOID = np.log(1 - SIGMOID).astype(np.float32)

# word2vec.c's linear congruential generator: cheap, and identical on every platform. Unlike
# word2vec.c we use only its high bits: the low bits of an LCG repeat with short periods.
LCG_A = np.uint64(25214903917)
LCG_C = np.uint64(11)
SHIFT32 = np.uint64(32)
SHIFT40 = np.uint64(40)


@njit(inline="always")
def lcg_next(state):
    """The generator's next 64-bit state."""
    return state * LCG_A + LCG_C


@njit(inline="always")
def below(state, n):
    """A number in [0, n) from the state's high 32 bits, by multiply-shift (Lemire 2019) rather
    than modulo: a 64-bit division costs tens of cycles and sits on the per-word critical path."""
    return np.int64(((state >> SHIFT32) * np.uint64(n)) >> SHIFT32)


@njit(inline="always")
def draw_noise(state, noise_prob, noise_alias):
    """A noise word from the alias table (a column, then a coin); returns (word, rng state).

    Both draws use the generator's high bits: an LCG's low bits repeat with short periods. The
    alias is read whether or not the coin picks it, so the choice compiles to a conditional move:
    a branch on a random coin is mispredicted about as often as not.
    """
    state = lcg_next(state)
    column = below(state, noise_prob.shape[0])
    state = lcg_next(state)
    alias = np.int64(noise_alias[column])
    coin = np.float32(state >> SHIFT40) / np.float32(16777216.0)
    return column if coin < noise_prob[column] else alias, state


@njit(inline="always")
def sigmoid_grad(f, label, alpha):
    """(gradient scale, loss) of one logistic example: g = (label - sigmoid(f)) * alpha.

    Sigmoid and log-sigmoid come from 1,000-entry tables over [-6, 6] as in word2vec.c: exp and
    log per example are a large share of skip-gram's time, the tables almost nothing. The per-word
    kernels skip the update of a saturated example (|f| >= 6) as gensim does, where word2vec.c
    applies the clipped gradient: skipping gave slightly better analogy accuracy
    (docs/word2vec.md).
    """
    if f <= -MAX_EXP:
        i = 0
    elif f >= MAX_EXP:
        i = TABLE_SIZE - 1
    else:
        i = int((f + MAX_EXP) * (TABLE_SIZE / MAX_EXP / 2))
    if label == 1:
        return np.float32((1.0 - SIGMOID[i]) * alpha), -LOG_SIGMOID[i]
    return np.float32(-SIGMOID[i] * alpha), -LOG_1M_SIGMOID[i]


@njit(inline="always")
def logistic(f, label):
    """(sigmoid(f), logistic loss of label) from one exp and one log1p, stable for any f.

    The batched step's exact counterpart of sigmoid_grad: it matches PyTorch's sigmoid and
    logsigmoid, which the GPU path uses, instead of word2vec.c's table.
    """
    e = np.exp(-abs(f))
    sigmoid = 1 / (1 + e) if f >= 0 else e / (1 + e)
    softplus = np.log1p(e)  # -log sigmoid(f) = softplus - min(f, 0)
    return sigmoid, softplus - min(f, 0) if label else softplus + max(f, 0)


@njit(inline="always")
def read_sentence(tokens, start, keep, sentence, state):
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
            state = lcg_next(state)
            if p < np.float32(state >> SHIFT40) / np.float32(16777216.0):
                continue
        sentence[m] = w
        m += 1
    return end, m, state


@njit(inline="always")
def dynamic_window(pos, m, window, state):
    """word2vec.c's dynamic window around pos: a random shrink b in [0, window); (lo, hi, state)."""
    state = lcg_next(state)
    b = below(state, window)
    return max(0, pos - window + b), min(m, pos + window + 1 - b), state


@intrinsic
def _prefetch(typingctx, array, row, col):
    """Ask the CPU to fetch the cache line of array[row, col] (2-D, C order) into all cache levels,
    for writing (llvm.prefetch: no fault, no effect on results); numba has no prefetch of its own.

    For writing (x86 PREFETCHW): the rows prefetched are rows about to be updated, and under
    Hogwild another thread may hold their lines; taking ownership early saves a second round trip
    at the store."""

    def codegen(context, builder, signature, args):
        array_type, row_type, col_type = signature.args
        view = context.make_array(array_type)(context, builder, args[0])
        index = [
            context.cast(builder, args[1], row_type, types.intp),
            context.cast(builder, args[2], col_type, types.intp),
        ]
        pointer = cgutils.get_item_pointer(
            context, builder, array_type, view, index, wraparound=False
        )
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn_type = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fn_type, "llvm.prefetch.p0")
        # write (1), highest locality (3), data cache (1)
        builder.call(fn, [builder.bitcast(pointer, byte_pointer), i32(1), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, row, col), codegen


@njit(inline="always")
def prefetch_row(array, row):
    """Prefetch every cache line of array[row] (a 64-byte line holds 16 float32)."""
    dim = array.shape[1]
    for d in range(0, dim, 16):
        _prefetch(array, row, d)
    _prefetch(array, row, dim - 1)  # rows are not line-aligned: the last one may start a line
