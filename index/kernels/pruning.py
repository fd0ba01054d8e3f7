"""Static pruning: posting lists cut from the forward index, and each document's top terms.

Weights are compared as float16 bit patterns (uint16): for non-negative values the bit
patterns sort as the values do, so the global threshold is found exactly from a
65,536-bucket histogram, in one pass, whatever the corpus size.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from index.kernels.jit import leaf


@leaf
def fwd_term(packed: np.ndarray, terms: np.ndarray, j: int) -> int:
    """Term id of forward entry ``j`` (packed uint32, or ``terms`` int32 when packed is empty)."""
    if packed.shape[0]:
        return np.int64(packed[j] >> 16)
    return np.int64(terms[j])


@leaf
def fwd_bits(packed: np.ndarray, bits: np.ndarray, j: int) -> np.uint16:
    """float16 bit pattern of forward entry ``j``."""
    if packed.shape[0]:
        return np.uint16(packed[j] & 0xFFFF)
    return bits[j]


@njit(cache=True, nogil=True, parallel=True)
def transpose_pruned(
    offsets: np.ndarray,
    packed: np.ndarray,
    terms: np.ndarray,
    bits: np.ndarray,
    threshold: int,
    dim: int,
    n_chunks: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posting lists of the forward entries whose float16 bits are >= ``threshold``.

    In: forward ``offsets`` int64 (n_docs+1,) over ``packed`` uint32 or ``terms`` int32 /
    ``bits`` uint16. Out: ``(list_offsets int64 (dim+1,), rows int32, bits uint16)``,
    rows ascending within each list. Documents are split in ``n_chunks`` ranges counted
    and filled in parallel; each range writes its own slice of every list.
    """
    n_docs = offsets.shape[0] - 1
    per = (n_docs + n_chunks - 1) // n_chunks
    counts = np.zeros((n_chunks, dim), dtype=np.int64)
    for c in prange(n_chunks):
        for d in range(c * per, min(n_docs, (c + 1) * per)):
            for j in range(offsets[d], offsets[d + 1]):
                if fwd_bits(packed, bits, j) >= threshold:
                    counts[c, fwd_term(packed, terms, j)] += 1
    list_offsets = np.zeros(dim + 1, dtype=np.int64)
    for t in range(dim):
        total = 0
        for c in range(n_chunks):
            n = counts[c, t]
            counts[c, t] = total  # becomes this range's start inside list t
            total += n
        list_offsets[t + 1] = list_offsets[t] + total
    rows = np.empty(list_offsets[dim], dtype=np.int32)
    out_bits = np.empty(list_offsets[dim], dtype=np.uint16)
    for c in prange(n_chunks):
        fill = counts[c]
        for d in range(c * per, min(n_docs, (c + 1) * per)):
            for j in range(offsets[d], offsets[d + 1]):
                b = fwd_bits(packed, bits, j)
                if b >= threshold:
                    t = fwd_term(packed, terms, j)
                    p = list_offsets[t] + fill[t]
                    rows[p] = d
                    out_bits[p] = b
                    fill[t] += 1
    return list_offsets, rows, out_bits


@njit(cache=True, nogil=True, parallel=True)
def cap_lists(
    offsets: np.ndarray, rows: np.ndarray, bits: np.ndarray, cap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep at most ``cap`` entries per list: the heaviest, ties to the lower row.

    In and out: CSC ``offsets`` int64 (dim+1,), ``rows`` int32, ``bits`` uint16 (float16
    weights), rows ascending per list.
    """
    dim = offsets.shape[0] - 1
    new_offsets = np.zeros(dim + 1, dtype=np.int64)
    for t in range(dim):
        new_offsets[t + 1] = new_offsets[t] + min(cap, offsets[t + 1] - offsets[t])
    out_rows = np.empty(new_offsets[dim], dtype=np.int32)
    out_bits = np.empty(new_offsets[dim], dtype=np.uint16)
    for t in prange(dim):
        a = offsets[t]
        b = offsets[t + 1]
        o = new_offsets[t]
        n_keep = new_offsets[t + 1] - o
        if n_keep == b - a:
            out_rows[o : o + n_keep] = rows[a:b]
            out_bits[o : o + n_keep] = bits[a:b]
            continue
        # Heaviest first; a stable sort keeps ascending rows among equal weights.
        order = np.argsort(-bits[a:b].astype(np.int32), kind="mergesort")[:n_keep]
        order.sort()
        for i in range(n_keep):
            out_rows[o + i] = rows[a + order[i]]
            out_bits[o + i] = bits[a + order[i]]
    return new_offsets, out_rows, out_bits


@njit(cache=True, nogil=True, parallel=True)
def doc_top_terms(
    offsets: np.ndarray, packed: np.ndarray, terms: np.ndarray, bits: np.ndarray, doc_cut: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each document's ``doc_cut`` heaviest terms (ties to the lower term), which assign it
    to a centroid cheaply. In: the forward index (``offsets`` int64, ``packed`` uint32 or
    ``terms`` int32 + ``bits`` uint16). Out: ``terms`` int32 (n_docs, doc_cut), ``bits``
    uint16 (n_docs, doc_cut), ``lengths`` int32 (n_docs,) (short rows fill a prefix)."""
    n_docs = offsets.shape[0] - 1
    top_terms = np.zeros((n_docs, doc_cut), dtype=np.int32)
    top_bits = np.zeros((n_docs, doc_cut), dtype=np.uint16)
    lengths = np.zeros(n_docs, dtype=np.int32)
    for d in prange(n_docs):
        a = offsets[d]
        n = offsets[d + 1] - a
        if n <= doc_cut:
            for i in range(n):
                top_terms[d, i] = fwd_term(packed, terms, a + i)
                top_bits[d, i] = fwd_bits(packed, bits, a + i)
            lengths[d] = n
            continue
        weights = np.empty(n, dtype=np.int32)
        for i in range(n):
            weights[i] = -np.int32(fwd_bits(packed, bits, a + i))
        order = np.argsort(weights, kind="mergesort")
        for i in range(doc_cut):
            top_terms[d, i] = fwd_term(packed, terms, a + order[i])
            top_bits[d, i] = fwd_bits(packed, bits, a + order[i])
        lengths[d] = doc_cut
    return top_terms, top_bits, lengths
