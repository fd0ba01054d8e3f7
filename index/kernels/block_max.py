"""Build of the block-max index: every term's maximum weight per range of documents.

The internal document order is cut into ranges of ``range_size`` consecutive documents;
the build reads the forward index (in the input's row order, through ``order``: internal
document ``i`` is input row ``order[i]``) range by range, twice: once to count the
(term, range) pairs and find each term's largest weight, once to write the pairs
term-major with their weights quantised to uint8 codes rounded *up*, so that a code
times its term's scale is never below the weight it stands for. Both passes run over
contiguous chunks of ranges in parallel; a chunk's pairs of one term follow those of
the chunk before, so every term's ranges come out ascending.

Float16 weights are non-negative, so their bit patterns order like their values: the
maxima are taken on the ``uint16`` bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from index.kernels.intrinsics import f16_bits_to_f32
from index.kernels.jit import leaf


@leaf
def _entry(packed: np.ndarray, terms: np.ndarray, bits: np.ndarray, j: int) -> tuple[int, int]:
    """(term, float16 bits) of forward entry ``j`` in either layout."""
    if packed.shape[0]:
        x = packed[j]
        return np.int64(x >> np.uint32(16)), np.int64(x & np.uint32(0xFFFF))
    return np.int64(terms[j]), np.int64(bits[j])


@leaf
def _range_maxima(
    r: int,
    range_size: int,
    offsets: np.ndarray,
    packed: np.ndarray,
    terms: np.ndarray,
    bits: np.ndarray,
    order: np.ndarray,
    mark: np.ndarray,
    top: np.ndarray,
    touched: np.ndarray,
) -> int:
    """Collect the distinct terms of range ``r`` into ``touched`` int32 and their largest
    float16 bits into ``top`` uint16 (dim,); ``mark`` int64 (dim,) holds the range that
    last touched each term. Returns the number of distinct terms."""
    n = 0
    for i in range(r * range_size, min(order.shape[0], (r + 1) * range_size)):
        row = order[i]
        for j in range(offsets[row], offsets[row + 1]):
            t, b = _entry(packed, terms, bits, j)
            if mark[t] != r:
                mark[t] = r
                top[t] = b
                touched[n] = t
                n += 1
            elif b > top[t]:
                top[t] = b
    return n


@leaf
def code_up(b: int, scale: np.float32) -> np.uint8:
    """Smallest uint8 code ``c`` with ``c * scale >= weight`` in exact arithmetic (the
    float64 product of an 8-bit and a 24-bit integer is exact), for the weight of float16
    bits ``b``; the scale is chosen so that 255 always suffices."""
    w = np.float64(f16_bits_to_f32(np.uint16(b)))
    s = np.float64(scale)
    if w <= 0.0 or s <= 0.0:
        return np.uint8(0)
    c = min(255.0, np.ceil(w / s))
    while c * s < w and c < 255.0:
        c += 1.0
    return np.uint8(c)


@njit(cache=True, nogil=True, parallel=True)
def _pairs_pass(
    offsets: np.ndarray,
    packed: np.ndarray,
    terms: np.ndarray,
    bits: np.ndarray,
    order: np.ndarray,
    range_size: int,
    table: np.ndarray,
    max_bits: np.ndarray,
    scales: np.ndarray,
    out_ranges: np.ndarray,
    out_codes: np.ndarray,
    fill: bool,
) -> None:
    """One pass over contiguous chunks of ranges in parallel (:func:`count_pairs` with
    ``fill`` False, :func:`fill_pairs` with True); ``table`` int64 (n_chunks, dim) is the
    counts or the starts."""
    n_chunks = table.shape[0]
    dim = table.shape[1]
    n_ranges = (order.shape[0] + range_size - 1) // range_size
    per = (n_ranges + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        r0 = c * per
        r1 = min(n_ranges, r0 + per)
        if r0 >= r1:
            continue
        mark = np.full(dim, -1, dtype=np.int64)
        top = np.zeros(dim, dtype=np.uint16)
        touched = np.empty(dim, dtype=np.int32)
        for r in range(r0, r1):
            n = _range_maxima(
                r, range_size, offsets, packed, terms, bits, order, mark, top, touched
            )
            for i in range(n):
                t = touched[i]
                if fill:
                    p = table[c, t]
                    out_ranges[p] = r
                    out_codes[p] = code_up(top[t], scales[t])
                    table[c, t] = p + 1
                else:
                    table[c, t] += 1
                    if top[t] > max_bits[c, t]:
                        max_bits[c, t] = top[t]


def count_pairs(
    offsets: np.ndarray,
    packed: np.ndarray,
    terms: np.ndarray,
    bits: np.ndarray,
    order: np.ndarray,
    range_size: int,
    counts: np.ndarray,
    max_bits: np.ndarray,
) -> None:
    """Pass 1. ``counts`` int64 (n_chunks, dim) zeroed: ranges of chunk ``c`` holding each
    term; ``max_bits`` uint16 (n_chunks, dim) zeroed: each term's largest float16 bits in
    the chunk. Forward arrays as in :class:`index.build_steps.Forward`; ``order`` int64
    (n_docs,)."""
    _pairs_pass(
        offsets, packed, terms, bits, order, range_size, counts, max_bits,
        np.empty(0, np.float32), np.empty(0, np.int32), np.empty(0, np.uint8), False,
    )  # fmt: skip


def fill_pairs(
    offsets: np.ndarray,
    packed: np.ndarray,
    terms: np.ndarray,
    bits: np.ndarray,
    order: np.ndarray,
    range_size: int,
    scales: np.ndarray,
    starts: np.ndarray,
    out_ranges: np.ndarray,
    out_codes: np.ndarray,
) -> None:
    """Pass 2. ``starts`` int64 (n_chunks, dim): where chunk ``c`` writes its first pair of
    each term (advanced in place); ``scales`` float32 (dim,). Writes ``out_ranges`` (uint16
    or int32) and ``out_codes`` uint8 (n_pairs,)."""
    _pairs_pass(
        offsets, packed, terms, bits, order, range_size, starts,
        np.empty((0, 0), np.uint16), scales, out_ranges, out_codes, True,
    )  # fmt: skip
