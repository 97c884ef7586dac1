"""A numba kernel writing word vectors as word2vec text lines, "%.9g" per value.

Formatting 6.8 million floats with Python (f"{v:.9g}") takes seconds; this writes them at a few
hundred MB/s. Nine significant digits make every float32 survive the text round trip: the
decimal is within 5e-9 (relative) of the value, closer than half the float32 spacing (3e-8).
The digits come from float64 arithmetic, so in a rare tie the last digit may differ from C's
printf; the round trip holds all the same (tests/model/test_vectors.py checks both).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

DIGITS = 9
MAX_VALUE_BYTES = 16  # "-1.23456789e-38": sign, 9 digits, point, exponent
POWERS = 10.0 ** np.arange(-60, 61)
LOG10_2 = 0.30102999566398120  # float64 powers of ten, POWERS[k + 60] = 10**k


@njit(cache=True, nogil=True)
def _write_text(out, k, text):
    for c in text:
        out[k] = ord(c)
        k += 1
    return k


@njit(cache=True, nogil=True)
def format_value(x, out, k, digits):
    """Write float32 x as C's "%.9g" would at out[k:]; return the new k. digits: uint8 scratch
    of DIGITS bytes."""
    if np.isnan(x):
        return _write_text(out, k, "nan")
    if np.signbit(x):
        out[k] = 45  # "-"
        k += 1
    a = abs(np.float64(x))
    if np.isinf(a):
        return _write_text(out, k, "inf")
    if a == 0.0:
        out[k] = 48
        return k + 1
    # decimal exponent from the binary one: a in [2**(b-1), 2**b) puts log10(a) in an interval
    # 0.30103 wide, so this is the exponent or one less (then m has 10 digits: corrected below)
    b = math.frexp(a)[1]
    e = math.floor((b - 1) * LOG10_2)
    m = int(np.rint(a * POWERS[DIGITS - 1 - e + 60]))  # the 9 significant digits, rounded
    if m >= 10**DIGITS:  # one less, or 9.999999995 rounded up to 10.0000000
        e += 1
        m = int(np.rint(a * POWERS[DIGITS - 1 - e + 60]))
    for i in range(DIGITS - 1, -1, -1):
        digits[i] = 48 + m % 10
        m //= 10
    n = DIGITS
    while n > 1 and digits[n - 1] == 48:  # %g drops trailing zeros
        n -= 1
    if -4 <= e < DIGITS:  # fixed notation
        if e < 0:
            out[k] = 48
            out[k + 1] = 46  # "0."
            k += 2
            for _ in range(-e - 1):
                out[k] = 48
                k += 1
            for i in range(n):
                out[k] = digits[i]
                k += 1
            return k
        for i in range(max(n, e + 1)):  # integer part, zero-padded when digits run out
            if i == e + 1:
                out[k] = 46
                k += 1
            out[k] = digits[i] if i < n else 48
            k += 1
        return k
    out[k] = digits[0]  # scientific notation: d.dddde+XX
    k += 1
    if n > 1:
        out[k] = 46
        k += 1
        for i in range(1, n):
            out[k] = digits[i]
            k += 1
    out[k] = 101  # "e"
    out[k + 1] = 45 if e < 0 else 43
    k += 2
    e = abs(e)
    if e >= 100:
        out[k] = 48 + e // 100
        k += 1
    out[k] = 48 + (e // 10) % 10
    out[k + 1] = 48 + e % 10
    return k + 2


@njit(cache=True, nogil=True)
def format_rows(keys, key_offsets, vectors, out):
    """Write "key v1 v2 ... vD\\n" per row to out (keys: UTF-8 bytes, key i at
    key_offsets[i]:key_offsets[i + 1]); returns the bytes written. out must hold
    len(keys) + rows * (D * (MAX_VALUE_BYTES + 1) + 1) bytes."""
    digits = np.empty(DIGITS, dtype=np.uint8)
    k = 0
    for row in range(vectors.shape[0]):
        for p in range(key_offsets[row], key_offsets[row + 1]):
            out[k] = keys[p]
            k += 1
        for value in vectors[row]:
            out[k] = 32
            k = format_value(value, out, k + 1, digits)
        out[k] = 10
        k += 1
    return k
