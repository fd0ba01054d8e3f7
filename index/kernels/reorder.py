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
def permute_csr(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of a CSR matrix taken in ``order`` int64 (n_rows,): new row i = old row order[i]."""
    n = order.shape[0]
    new_indptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        r = order[i]
        new_indptr[i + 1] = new_indptr[i] + indptr[r + 1] - indptr[r]
    new_indices = np.empty_like(indices)
    new_data = np.empty_like(data)
    for i in prange(n):
        r = order[i]
        a = indptr[r]
        o = new_indptr[i]
        for j in range(indptr[r + 1] - a):
            new_indices[o + j] = indices[a + j]
            new_data[o + j] = data[a + j]
    return new_indptr, new_indices, new_data


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
