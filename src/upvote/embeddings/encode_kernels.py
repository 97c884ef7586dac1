"""Numba kernels of corpus encoding: split UTF-8 bytes into tokens and count them in a hash table.

Counting words with a Python dict costs ~100 ns a token and normalising text with str.lower and
regular expressions about as much again; these kernels walk the raw bytes once, at hundreds of
MB/s, and never build a Python string per token. word_table.py drives them; they import nothing
of the project (low-level module: kernels never import orchestration).

The table maps a token's bytes to a *provisional id* (pid), given in first-seen order: exactly the
insertion order of a Python Counter, which the vocabulary's tie order depends on. Its arrays:

    slots    int32 [power of two]  open addressing (linear probing): a pid, or -1 when empty
    hashes   uint64 [capacity]     hash of each pid's bytes (compared before the bytes)
    offsets  int64 [capacity + 1]  pid's bytes are pool[offsets[pid]:offsets[pid + 1]]
    pool     uint8 [bytes]         the words' bytes, back to back
    counts   int64 [capacity]      occurrences of each pid
    sizes    int64 [5]             N_WORDS, PRUNE_AT, FLOOR, PRUNED, FROZEN (see maybe_prune)

The caller makes room in hashes, offsets, pool and counts before each call (for every token the
input could add: untouched memory costs nothing); scan_tokens grows slots itself. A *frozen*
table (the final vocabulary, pid = word id) is only looked up: unknown tokens are dropped,
nothing is counted.
"""

from __future__ import annotations

import numpy as np
from numba import njit

N_WORDS, PRUNE_AT, FLOOR, PRUNED, FROZEN = 0, 1, 2, 3, 4  # indices into `sizes`
SEPARATOR = -1  # written after each document in the id stream (the shards' convention)
UNKNOWN = -2  # a frozen table's answer for a token it does not hold
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
# the text8 normalisation spells digits out: "zero" .. "nine", back to back, with start offsets
DIGIT_BYTES = np.frombuffer(b"zeroonetwothreefourfivesixseveneightnine", dtype=np.uint8)
DIGIT_STARTS = np.array([0, 4, 7, 10, 15, 19, 23, 26, 31, 36, 40], dtype=np.int64)


@njit(cache=True, nogil=True, inline="always")
def _mix(h):
    """FNV-1a's low bits (the slot index) depend weakly on the last bytes: fold the high half in."""
    return h ^ (h >> np.uint64(29))


@njit(cache=True, nogil=True)
def rebuild_slots(slots, hashes, n_words):
    """Re-insert pids 0..n_words-1 into emptied slots (after pruning, or into a larger table)."""
    slots[:] = -1
    mask = len(slots) - 1
    for pid in range(n_words):
        s = np.int64(_mix(hashes[pid]) & np.uint64(mask))
        while slots[s] >= 0:
            s = (s + 1) & mask
        slots[s] = pid


@njit(cache=True, nogil=True)
def maybe_prune(slots, hashes, offsets, pool, counts, sizes):
    """word2vec.c's ReduceVocab, checked after every document as the Python Counter was: when more
    than PRUNE_AT words are held, drop those seen at most FLOOR times, keep the others in their
    first-seen order (renumbered 0..), and raise FLOOR by one. Sets PRUNED: pids given before
    no longer mean the same words."""
    n = sizes[N_WORDS]
    if n <= sizes[PRUNE_AT]:
        return
    floor = sizes[FLOOR]
    kept = 0
    start = offsets[0]
    for pid in range(n):
        end = offsets[pid + 1]  # read before offsets[kept + 1] (<= pid + 1) is overwritten
        if counts[pid] > floor:
            base = offsets[kept]
            for j in range(end - start):  # base <= start: a forward copy is safe in place
                pool[base + j] = pool[start + j]
            offsets[kept + 1] = base + end - start
            hashes[kept] = hashes[pid]
            counts[kept] = counts[pid]
            kept += 1
        start = end
    sizes[N_WORDS] = kept
    sizes[FLOOR] = floor + 1
    sizes[PRUNED] = 1
    rebuild_slots(slots, hashes, kept)


@njit(cache=True, nogil=True)
def _multibyte_space(data, i, n):
    """Width of the Unicode whitespace character (str.split's, beyond ASCII) at data[i], else 0:
    U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000."""
    b = data[i]
    if b == 0xC2 and i + 1 < n:
        c = data[i + 1]
        return 2 if c == 0x85 or c == 0xA0 else 0
    if i + 2 >= n or b < 0xE1 or b > 0xE3:
        return 0
    c, d = data[i + 1], data[i + 2]
    if b == 0xE1:
        return 3 if c == 0x9A and d == 0x80 else 0
    if b == 0xE3:
        return 3 if c == 0x80 and d == 0x80 else 0
    if c == 0x80:
        return 3 if 0x80 <= d <= 0x8A or d == 0xA8 or d == 0xA9 or d == 0xAF else 0
    return 3 if c == 0x81 and d == 0x9F else 0


@njit(cache=True, nogil=True)
def split_text(
    data, doc_ends, line_mode, word_mode, pseudo_words, final, state,
    tokens, token_offsets, token_hashes, doc_lengths,
):  # fmt: skip
    """Split UTF-8 bytes into tokens, written back to back to `tokens`: token j is
    tokens[token_offsets[j]:token_offsets[j + 1]], its hash token_hashes[j], document i the
    next doc_lengths[i] tokens. Returns (tokens, documents); tokens after the last document
    belong to one still open. (Hashing here, in the reader thread, leaves scan_tokens, the
    other thread, only the table lookups.)

    Tokens are split on Python's str.split() whitespace. word_mode applies WordTokenizer's text8
    normalisation on the way: ASCII letters lower-cased, digits become the words "zero".."nine",
    U+0130 and U+212A give "i" and "k" (the only non-ASCII characters whose str.lower() holds an
    ASCII letter or digit), any other character separates tokens.

    line_mode (text files): a line (ended by \\n or \\r, Python's universal newlines) is a
    document, cut after every pseudo_words whitespace-separated words; state[0] carries the
    current line's word count to the next call, and `final` closes the last line. Otherwise
    documents end at the byte offsets doc_ends and newlines are plain whitespace.
    The caller cuts data only after ASCII whitespace, so no token or character straddles calls.
    Sizes: tokens >= 5 * len(data) bytes (a digit spelled out), token_offsets > len(data) + 1.
    """
    n = len(data)
    t = 0  # bytes written to tokens
    n_tokens = n_docs = doc_tokens = 0
    token_offsets[0] = 0
    h = FNV_OFFSET
    in_word = False  # inside a whitespace-separated word (counts towards pseudo_words)
    words = state[0]
    d = 0  # next entry of doc_ends
    i = 0
    while i <= n:  # i == n: the end of the data closes the last token (and line, when final)
        # fast path for the common case, a run of ASCII letters (any non-space ASCII byte for the
        # plain split), up to the next document end; what ends it is handled below
        stop = n if line_mode or d >= len(doc_ends) else min(n, doc_ends[d])
        while i < stop:
            b = data[i]
            if word_mode:
                if not (97 <= b <= 122 or 65 <= b <= 90):
                    break
                b |= 32
            elif b <= 32 or b >= 128 or 28 <= b <= 31:
                break
            tokens[t] = b
            h = (h ^ np.uint64(b)) * FNV_PRIME
            t += 1
            in_word = True
            i += 1
        add, digit, width = -1, -1, 1  # byte to append to the token, digit to spell, step
        boundary, space, newline, ends_doc = True, False, False, False
        if not line_mode and d < len(doc_ends) and doc_ends[d] <= i:
            space, ends_doc, width = True, True, 0  # several documents may end here (empty ones)
            d += 1
        elif i == n:
            space, newline = True, line_mode and final
        else:
            b = data[i]
            if b < 128:
                if b == 32 or 9 <= b <= 13 or 28 <= b <= 31:
                    space = True
                    newline = line_mode and (b == 10 or b == 13)
                elif not word_mode:
                    add, boundary = b, False
                elif 97 <= b <= 122 or 65 <= b <= 90:
                    add, boundary = b | 32, False
                elif 48 <= b <= 57:
                    digit = b - 48
            else:
                spaces = _multibyte_space(data, i, n)
                if spaces > 0:
                    space, width = True, spaces
                elif not word_mode:
                    add, boundary = b, False
                elif b == 0xC4 and i + 1 < n and data[i + 1] == 0xB0:
                    add, width = 105, 2  # U+0130 lower-cases to "i" + U+0307 (a separator)
                elif b == 0xE2 and i + 2 < n and data[i + 1] == 0x84 and data[i + 2] == 0xAA:
                    add, boundary, width = 107, False, 3  # U+212A KELVIN SIGN: "k"
                # else any other character separates tokens (byte by byte: a continuation byte
                # never starts one of the sequences above)
        if add >= 0:
            tokens[t] = add
            h = (h ^ np.uint64(add)) * FNV_PRIME
            t += 1
        if boundary and t > token_offsets[n_tokens]:
            token_hashes[n_tokens] = h
            n_tokens += 1
            doc_tokens += 1
            token_offsets[n_tokens] = t
            h = FNV_OFFSET
        if digit >= 0:
            for j in range(DIGIT_STARTS[digit], DIGIT_STARTS[digit + 1]):
                tokens[t] = DIGIT_BYTES[j]
                h = (h ^ np.uint64(DIGIT_BYTES[j])) * FNV_PRIME
                t += 1
            token_hashes[n_tokens] = h
            n_tokens += 1
            doc_tokens += 1
            token_offsets[n_tokens] = t
            h = FNV_OFFSET
        if not space:
            in_word = True
        elif in_word:
            in_word = False
            words += 1
            if line_mode and words == pseudo_words:
                ends_doc = True
        if newline and words > 0:
            ends_doc = True
        if ends_doc:
            doc_lengths[n_docs] = doc_tokens
            n_docs += 1
            doc_tokens = 0
            words = 0
        i += width
    state[0] = words
    return n_tokens, n_docs


@njit(cache=True, nogil=True)
def scan_tokens(
    data, token_offsets, token_hashes, doc_lengths,
    slots, hashes, offsets, pool, counts, sizes, out,
):  # fmt: skip
    """Look every token data[token_offsets[j]:token_offsets[j + 1]] (hash token_hashes[j]) up
    in the table, adding and counting it (a new word gets the next pid), and write its pid to
    out, a SEPARATOR after each document of doc_lengths tokens (tokens after the last one: a
    document still open). A frozen table drops the tokens it does not hold and counts nothing.

    Returns (ids written, slots): slots is replaced by one twice as large whenever it would
    become more than half full, so it stays as small (as cache friendly) as the words need.
    The lookup is written out here, not called: numba passes a call's arrays with reference
    counting, which cost more than the lookup itself."""
    frozen = sizes[FROZEN] != 0
    mask = len(slots) - 1
    n_tokens = len(token_offsets) - 1
    k = j = doc = 0
    left = doc_lengths[0] if len(doc_lengths) else -1  # tokens left in this document
    while True:
        while left == 0:  # a document ends here (perhaps an empty one)
            out[k] = SEPARATOR
            k += 1
            if not frozen:
                maybe_prune(slots, hashes, offsets, pool, counts, sizes)
            doc += 1
            left = doc_lengths[doc] if doc < len(doc_lengths) else -1
        if j == n_tokens:
            return k, slots
        start, end, h = token_offsets[j], token_offsets[j + 1], token_hashes[j]
        j += 1
        left -= 1
        s = np.int64(_mix(h) & np.uint64(mask))
        while True:
            pid = slots[s]
            if pid < 0 or (
                hashes[pid] == h
                and offsets[pid + 1] - offsets[pid] == end - start
                and _same(pool, offsets[pid], data, start, end - start)
            ):
                break
            s = (s + 1) & mask
        if pid >= 0:
            if not frozen:
                counts[pid] += 1
        elif frozen:
            continue  # not in the vocabulary: dropped
        else:  # a new word
            pid = sizes[N_WORDS]
            if 2 * (pid + 1) > len(slots):
                slots = np.empty(2 * len(slots), dtype=slots.dtype)
                rebuild_slots(slots, hashes, pid)
                mask = len(slots) - 1
                s = np.int64(_mix(h) & np.uint64(mask))
                while slots[s] >= 0:
                    s = (s + 1) & mask
            sizes[N_WORDS] = pid + 1
            base = offsets[pid]
            pool[base : base + end - start] = data[start:end]
            offsets[pid + 1] = base + end - start
            hashes[pid] = h
            counts[pid] = 1
            slots[s] = pid
        out[k] = pid
        k += 1


@njit(cache=True, nogil=True, inline="always")
def _same(a, a_start, b, b_start, length):
    for i in range(length):  # noqa: SIM110 (all() over a generator: slow or unsupported in numba)
        if a[a_start + i] != b[b_start + i]:
            return False
    return True


@njit(cache=True, nogil=True)
def hash_tokens(data, token_offsets, token_hashes):
    """token_hashes[j] = the hash of data[token_offsets[j]:token_offsets[j + 1]] (FNV-1a)."""
    for j in range(len(token_offsets) - 1):
        h = FNV_OFFSET
        for p in range(token_offsets[j], token_offsets[j + 1]):
            h = (h ^ np.uint64(data[p])) * FNV_PRIME
        token_hashes[j] = h


@njit(cache=True, nogil=True)
def first_invalid_utf8(data):
    """Offset of the first byte that Python's strict UTF-8 decoder rejects, or -1 (valid)."""
    n = len(data)
    i = 0
    while i < n:
        b = data[i]
        if b < 0x80:
            i += 1
            continue
        if 0xC2 <= b <= 0xDF:
            width, low, high = 2, 0x80, 0xBF
        elif 0xE0 <= b <= 0xEF:
            width = 3
            low = 0xA0 if b == 0xE0 else 0x80
            high = 0x9F if b == 0xED else 0xBF  # no surrogates
        elif 0xF0 <= b <= 0xF4:
            width = 4
            low = 0x90 if b == 0xF0 else 0x80
            high = 0x8F if b == 0xF4 else 0xBF  # nothing above U+10FFFF
        else:
            return i
        if i + width > n or not low <= data[i + 1] <= high:
            return i
        for j in range(i + 2, i + width):
            if not 0x80 <= data[j] <= 0xBF:
                return i
        i += width
    return -1


@njit(cache=True, nogil=True)
def shard_cuts(doc_ends, filled, capacity):
    """Where shards end in a stream of whole documents (doc_ends: offset after each SEPARATOR),
    the old rule kept exactly: a shard holds whole documents, at most `capacity` ids, and a
    document longer than that gets a shard of its own. `filled`: ids already waiting in the
    current shard. Returns (cut offsets, ids waiting after the last document)."""
    cuts = np.empty(2 * len(doc_ends), dtype=np.int64)
    n_cuts = 0
    start = 0
    for end in doc_ends:
        length = end - start
        if filled + length > capacity and filled > 0:
            cuts[n_cuts] = start
            n_cuts += 1
            filled = 0
        if length > capacity:
            cuts[n_cuts] = end
            n_cuts += 1
        else:
            filled += length
        start = end
    return cuts[:n_cuts], filled
