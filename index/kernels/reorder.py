"""Document reordering for locality: documents that sit in the same block of their
heaviest term's posting list get neighbouring internal ids, so a visited block reads a
mostly contiguous stretch of the forward index instead of scattered rows."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def locality_keys(
    offsets: np.ndarray,
    block_sizes: np.ndarray,
    block_base: np.ndarray,
    rows: np.ndarray,
    heaviest: np.ndarray,
) -> np.ndarray:
    """Sort key per document: the (global, uncompacted) block holding it in the list of its
    heaviest term ``heaviest`` int32 (n_docs,), or ``n_blocks + row`` when it has none.

    ``offsets`` int64 (dim+1,) into ``rows`` int32 (grouped by block), ``block_sizes`` int64
    and ``block_base`` int64 (dim+1,) as returned by the blocking step. Out: int64 (n_docs,).
    """
    n_docs = heaviest.shape[0]
    n_blocks = block_sizes.shape[0]
    keys = np.arange(n_docs).astype(np.int64) + n_blocks
    dim = offsets.shape[0] - 1
    for t in range(dim):
        p = offsets[t]
        for b in range(block_base[t], block_base[t + 1]):
            for _ in range(block_sizes[b]):
                r = rows[p]
                if heaviest[r] == t:
                    keys[r] = b
                p += 1
    return keys


@njit(cache=True, nogil=True, parallel=True)
def gather_forward(
    offsets: np.ndarray,
    packed: np.ndarray,
    terms: np.ndarray,
    bits: np.ndarray,
    order: np.ndarray,
    first: int,
    out_offsets: np.ndarray,
    out_packed: np.ndarray,
    out_terms: np.ndarray,
    out_bits: np.ndarray,
) -> None:
    """Rows ``order[i]`` of a forward index (``offsets`` int64, ``packed`` uint32 or
    ``terms`` int32 + ``bits`` uint16) copied to new rows ``i``: ``out_offsets`` int64
    (len(order)+1,) are the new rows' offsets relative to entry ``first``, the ``out_*``
    arrays (the used layout only) receive their entries."""
    n = order.shape[0]
    split = packed.shape[0] == 0
    for i in prange(n):
        r = order[i]
        a = offsets[r]
        o = out_offsets[i] - first
        for j in range(offsets[r + 1] - a):
            if split:
                out_terms[o + j] = terms[a + j]
                out_bits[o + j] = bits[a + j]
            else:
                out_packed[o + j] = packed[a + j]


@njit(cache=True, nogil=True, parallel=True)
def renumber_blocks(rows: np.ndarray, block_docs: np.ndarray, new_of_old: np.ndarray) -> None:
    """Map ``rows`` int32 in place through ``new_of_old`` int32 and sort each block
    (``block_docs`` int64 (n_blocks+1,)) ascending."""
    for b in prange(block_docs.shape[0] - 1):
        a = block_docs[b]
        e = block_docs[b + 1]
        seg = np.empty(e - a, dtype=rows.dtype)
        for p in range(a, e):
            seg[p - a] = new_of_old[rows[p]]
        seg.sort()
        rows[a:e] = seg
