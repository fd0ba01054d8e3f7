"""Exact top-k inner-product search over full posting lists.

Only documents sharing at least one term with the query are candidates (the others
score 0); missing slots are padded with row -1 and score 0.0.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from index.kernels.heap import heap_drain, heap_push


@njit(cache=True, nogil=True)
def transpose_csr(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_cols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR (int64 indptr, int32 indices, float32 data) -> CSC: ``(col_offsets int64 (n_cols+1,),
    rows int32 (nnz,), values float32 (nnz,))``, rows ascending within each column."""
    nnz = indices.shape[0]
    offsets = np.zeros(n_cols + 1, dtype=np.int64)
    for j in range(nnz):
        offsets[indices[j] + 1] += 1
    for c in range(n_cols):
        offsets[c + 1] += offsets[c]
    fill = offsets[:-1].copy()
    rows = np.empty(nnz, dtype=np.int32)
    values = np.empty(nnz, dtype=np.float32)
    for r in range(indptr.shape[0] - 1):
        for j in range(indptr[r], indptr[r + 1]):
            c = indices[j]
            p = fill[c]
            rows[p] = r
            values[p] = data[j]
            fill[c] = p + 1
    return offsets, rows, values


@njit(cache=True, nogil=True, inline="always")
def dot_dense_csr(
    dense: np.ndarray, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, row: int
) -> np.float32:
    """Inner product of a dense float32 vector with CSR row ``row``, summed in column order
    in four interleaved partial sums, exactly as :func:`index.kernels.forward.forward_dot`
    sums a forward-index row (entry ``j`` to partial ``j % 4``, the tail to the first,
    then ``(s0 + s1) + (s2 + s3)``)."""
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    j = indptr[row]
    stop = indptr[row + 1]
    while j + 4 <= stop:
        s0 += dense[indices[j]] * data[j]
        s1 += dense[indices[j + 1]] * data[j + 1]
        s2 += dense[indices[j + 2]] * data[j + 2]
        s3 += dense[indices[j + 3]] * data[j + 3]
        j += 4
    while j < stop:
        s0 += dense[indices[j]] * data[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


# Relative margin between the accumulated (query-order) and the exact (document-order)
# float32 sums: both are within n * 2**-24 of the true sum for n <= a few thousand terms;
# below float32's normal range the error is absolute, hence the absolute margin too.
_MARGIN = np.float32(1e-3)
_TINY = np.float32(1e-36)
_MARK = np.float32(1e-45)


@njit(cache=True, nogil=True)
def exact_one(
    q_indices: np.ndarray,
    q_data: np.ndarray,
    d_indptr: np.ndarray,
    d_indices: np.ndarray,
    d_data: np.ndarray,
    t_offsets: np.ndarray,
    t_rows: np.ndarray,
    t_values: np.ndarray,
    dense: np.ndarray,
    acc: np.ndarray,
    touched: np.ndarray,
    heap_scores: np.ndarray,
    heap_rows: np.ndarray,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> None:
    """Exact top-k for one query (int32 terms, float32 weights).

    Term-at-a-time accumulation over the full posting lists (``t_*``, CSC) finds the
    k-th best score; the documents within a small margin of it are rescored from the
    forward rows (``d_*``, CSR) so that returned scores are summed in document order.
    Scratch: ``dense`` float32 (dim,) and ``acc`` float32 (n_docs,) zeroed (left zeroed),
    ``touched`` int32 (n_docs,).
    """
    n_t = 0
    for j in range(q_indices.shape[0]):
        t = q_indices[j]
        v = q_data[j]
        dense[t] = v
        for p in range(t_offsets[t], t_offsets[t + 1]):
            r = t_rows[p]
            if acc[r] == 0.0:
                touched[n_t] = r
                n_t += 1
            acc[r] += v * t_values[p]
            if acc[r] == 0.0:
                # Keeps a touched row marked when its products underflow: the smallest
                # subnormal, so that it ranks below every row with a positive score.
                acc[r] = _MARK
    k = heap_scores.shape[0]
    size = 0
    for i in range(n_t):
        size = heap_push(heap_scores, heap_rows, size, acc[touched[i]], touched[i])
    threshold = np.float32(0.0)
    if size == k:
        threshold = max(np.float32(0.0), heap_scores[0] * (np.float32(1.0) - _MARGIN) - _TINY)
    size = 0
    for i in range(n_t):
        r = touched[i]
        if acc[r] >= threshold:
            s = dot_dense_csr(dense, d_indptr, d_indices, d_data, r)
            size = heap_push(heap_scores, heap_rows, size, s, r)
        acc[r] = 0.0
    heap_drain(heap_scores, heap_rows, size, out_rows, out_scores)
    for j in range(q_indices.shape[0]):
        dense[q_indices[j]] = 0.0


@njit(cache=True, nogil=True, parallel=True)
def exact_batch(
    q_indptr: np.ndarray,
    q_indices: np.ndarray,
    q_data: np.ndarray,
    d_indptr: np.ndarray,
    d_indices: np.ndarray,
    d_data: np.ndarray,
    t_offsets: np.ndarray,
    t_rows: np.ndarray,
    t_values: np.ndarray,
    dim: int,
    n_chunks: int,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> None:
    """Exact top-k for every query row; ``out_rows`` int64 / ``out_scores`` float32 (nq, k).

    Queries are split in ``n_chunks`` contiguous chunks; each chunk (one thread) reuses
    its scratch (dense query, score accumulator) for all its queries.
    """
    nq = q_indptr.shape[0] - 1
    k = out_rows.shape[1]
    n_docs = d_indptr.shape[0] - 1
    per = (nq + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        start = c * per
        stop = min(nq, start + per)
        if start >= stop:
            continue
        dense = np.zeros(dim, dtype=np.float32)
        acc = np.zeros(n_docs, dtype=np.float32)
        touched = np.empty(n_docs, dtype=np.int32)
        heap_scores = np.empty(k, dtype=np.float32)
        heap_rows = np.empty(k, dtype=np.int64)
        for q in range(start, stop):
            a = q_indptr[q]
            b = q_indptr[q + 1]
            exact_one(
                q_indices[a:b],
                q_data[a:b],
                d_indptr,
                d_indices,
                d_data,
                t_offsets,
                t_rows,
                t_values,
                dense,
                acc,
                touched,
                heap_scores,
                heap_rows,
                out_rows[q],
                out_scores[q],
            )


@njit(cache=True, nogil=True)
def check_vector(indices: np.ndarray, values: np.ndarray, dim: int) -> int:
    """Classify one sparse query (``indices`` int32, ``values`` float32): 0 ready (terms
    strictly ascending, weights > 0 and finite), 1 needs sorting/merging/zero removal,
    2 a term outside ``[0, dim)``, 3 a negative or non-finite weight."""
    status = 0
    prev = -1
    for j in range(indices.shape[0]):
        t = indices[j]
        v = values[j]
        if t < 0 or t >= dim:
            return 2
        if not np.isfinite(v) or v < 0:
            return 3
        if t <= prev or v == 0:
            status = 1
        prev = t
    return status
