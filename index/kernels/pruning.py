"""Static pruning of posting lists and the per-document top terms used by clustering."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def _kept_count(values: np.ndarray, start: int, stop: int, threshold: float, cap: int) -> int:
    n = 0
    for p in range(start, stop):
        if values[p] >= threshold:
            n += 1
    return min(n, cap)


@njit(cache=True, nogil=True, parallel=True)
def prune_lists(
    offsets: np.ndarray, rows: np.ndarray, values: np.ndarray, threshold: float, cap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep, in each posting list, the entries with weight >= ``threshold``, at most ``cap``
    of them (the heaviest; ties to the lower row).

    In: CSC ``offsets`` int64 (dim+1,), ``rows`` int32, ``values`` float32, rows ascending
    per list. Out: the pruned CSC, same dtypes, rows still ascending per list.
    """
    dim = offsets.shape[0] - 1
    counts = np.zeros(dim + 1, dtype=np.int64)
    for t in prange(dim):
        counts[t + 1] = _kept_count(values, offsets[t], offsets[t + 1], threshold, cap)
    new_offsets = np.cumsum(counts)
    out_rows = np.empty(new_offsets[-1], dtype=np.int32)
    out_values = np.empty(new_offsets[-1], dtype=np.float32)
    for t in prange(dim):
        a = offsets[t]
        b = offsets[t + 1]
        o = new_offsets[t]
        n_keep = new_offsets[t + 1] - o
        if n_keep == b - a:
            out_rows[o : o + n_keep] = rows[a:b]
            out_values[o : o + n_keep] = values[a:b]
            continue
        # Heaviest first; a stable sort keeps ascending rows among equal weights.
        order = np.argsort(-values[a:b], kind="mergesort")[:n_keep]
        order.sort()
        for i in range(n_keep):
            out_rows[o + i] = rows[a + order[i]]
            out_values[o + i] = values[a + order[i]]
    return new_offsets, out_rows, out_values


@njit(cache=True, nogil=True, parallel=True)
def doc_top_terms(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, doc_cut: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each document's ``doc_cut`` heaviest terms, used to assign it to a centroid cheaply.

    Out: ``terms`` int32 (n_docs, doc_cut), ``values`` float32 (n_docs, doc_cut), ``lengths``
    int32 (n_docs,) (rows shorter than ``doc_cut`` fill only a prefix).
    """
    n_docs = indptr.shape[0] - 1
    terms = np.zeros((n_docs, doc_cut), dtype=np.int32)
    vals = np.zeros((n_docs, doc_cut), dtype=np.float32)
    lengths = np.zeros(n_docs, dtype=np.int32)
    for r in prange(n_docs):
        a = indptr[r]
        b = indptr[r + 1]
        n = b - a
        if n <= doc_cut:
            for i in range(n):
                terms[r, i] = indices[a + i]
                vals[r, i] = data[a + i]
            lengths[r] = n
        else:
            order = np.argsort(-data[a:b], kind="mergesort")
            for i in range(doc_cut):
                terms[r, i] = indices[a + order[i]]
                vals[r, i] = data[a + order[i]]
            lengths[r] = doc_cut
    return terms, vals, lengths
