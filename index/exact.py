"""Exact top-k inner-product search, the ground truth for the approximate index."""

from __future__ import annotations

import numba
import numpy as np

from index.kernels.exact import exact_batch, transpose_csr
from index.validation import as_csr, check_k, check_queries


def exact_search(
    docs_csr: object, queries_csr: object, k: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` documents by inner product for every query row (multi-threaded Numba).

    Returns ``(ids int64 (n_queries, k), scores float32 (n_queries, k))``, best first.
    Ties on score go to the lower row. Only documents sharing a term with the query are
    returned (all others score 0); missing slots, e.g. for an empty query, hold id -1 and
    score 0.0. Scores are float32 sums taken in the document's column order.
    """
    k = check_k(k)
    docs = as_csr(docs_csr, name="docs")
    queries = as_csr(queries_csr, name="queries")
    check_queries(queries, docs.n_cols)
    t_offsets, t_rows, t_values = transpose_csr(docs.indptr, docs.indices, docs.data, docs.n_cols)
    out_rows = np.empty((queries.n_rows, k), dtype=np.int64)
    out_scores = np.empty((queries.n_rows, k), dtype=np.float32)
    n_chunks = max(1, min(queries.n_rows, numba.get_num_threads()))
    exact_batch(
        queries.indptr,
        queries.indices,
        queries.data,
        docs.indptr,
        docs.indices,
        docs.data,
        t_offsets,
        t_rows,
        t_values,
        docs.n_cols,
        n_chunks,
        out_rows,
        out_scores,
    )
    return out_rows, out_scores


def recall_vs_exact(approx_rows, exact_rows) -> float:
    """Mean share of each query's exact top-k rows that the approximate top-k also holds.

    ``(n_queries, k)`` id arrays as :func:`exact_search` returns them, or one id sequence per
    query (another engine's ragged results); -1 pads are ignored, and queries with no exact
    hit are left out of the mean (NaN when none has one).
    """
    shares = []
    for approx, exact in zip(approx_rows, exact_rows, strict=True):
        approx, exact = np.asarray(approx, np.int64), np.asarray(exact, np.int64)
        truth = set(exact[exact >= 0].tolist())
        if truth:
            shares.append(len(truth & set(approx[approx >= 0].tolist())) / len(truth))
    return float(np.mean(shares)) if shares else float("nan")
