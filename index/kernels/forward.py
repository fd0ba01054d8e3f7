"""Exact scoring of documents from the forward index.

A document's score is its inner product with the query, held as a dense float32 vector.
The sum runs in four interleaved partial sums (entry ``j`` of the row goes to partial
``j % 4``, a tail of fewer than four entries to the first, then ``(s0 + s1) + (s2 + s3)``):
four independent addition chains instead of one, which is what bounds the loop on every
CPU. :func:`index.kernels.exact.dot_dense_csr` sums in the same order, so that the index
and exact search agree bit for bit on float16-representable weights.
"""

from __future__ import annotations

import numpy as np

from index.kernels.intrinsics import f16_bits_to_f32, prefetch
from index.kernels.jit import leaf


@leaf
def _packed_term(x: np.uint32) -> int:
    return x >> 16


@leaf
def _packed_value(x: np.uint32) -> np.float32:
    return f16_bits_to_f32(np.uint16(x & 0xFFFF))


@leaf
def forward_dot(
    dense: np.ndarray,
    packed: np.ndarray,
    terms: np.ndarray,
    bits: np.ndarray,
    start: int,
    stop: int,
) -> np.float32:
    """Inner product of ``dense`` float32 (dim,) with the forward-index entries
    ``[start, stop)`` of one document, in the four-partial-sum order of this module.

    ``packed`` uint32, or (when it is empty) ``terms`` int32 with ``bits`` uint16: the
    arrays of :class:`index.layout.ForwardIndex` (passed apart, so that a caller's hot
    loop reads them from registers, not from the record)."""
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    j = start
    if packed.shape[0]:
        while j + 4 <= stop:
            x0 = packed[j]
            x1 = packed[j + 1]
            x2 = packed[j + 2]
            x3 = packed[j + 3]
            s0 += dense[_packed_term(x0)] * _packed_value(x0)
            s1 += dense[_packed_term(x1)] * _packed_value(x1)
            s2 += dense[_packed_term(x2)] * _packed_value(x2)
            s3 += dense[_packed_term(x3)] * _packed_value(x3)
            j += 4
        while j < stop:
            x0 = packed[j]
            s0 += dense[_packed_term(x0)] * _packed_value(x0)
            j += 1
    else:
        while j + 4 <= stop:
            s0 += dense[terms[j]] * f16_bits_to_f32(bits[j])
            s1 += dense[terms[j + 1]] * f16_bits_to_f32(bits[j + 1])
            s2 += dense[terms[j + 2]] * f16_bits_to_f32(bits[j + 2])
            s3 += dense[terms[j + 3]] * f16_bits_to_f32(bits[j + 3])
            j += 4
        while j < stop:
            s0 += dense[terms[j]] * f16_bits_to_f32(bits[j])
            j += 1
    return (s0 + s1) + (s2 + s3)


@leaf
def prefetch_row(
    packed: np.ndarray, terms: np.ndarray, bits: np.ndarray, start: int, stop: int
) -> int:
    """Prefetch every cache line of the forward entries ``[start, stop)`` (a SPLADE row
    spans 2-10 lines; fetching only its first would leave the others as serial misses).
    Arrays as in :func:`forward_dot`. Returns the number of lines asked for."""
    if stop <= start:
        return 0
    if packed.shape[0]:
        n = 0
        for j in range(start, stop, 16):
            prefetch(packed, j)
            n += 1
        prefetch(packed, stop - 1)
        return n + 1
    n = 0
    for j in range(start, stop, 16):
        prefetch(terms, j)
        n += 1
    prefetch(terms, stop - 1)
    for j in range(start, stop, 32):
        prefetch(bits, j)
        n += 1
    prefetch(bits, stop - 1)
    return n + 2
