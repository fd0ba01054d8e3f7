"""Exact top-k over a corpus on disk in bounded memory: ``exact_search`` chunk by chunk.

Each chunk of rows is read from the big-ann ``.csr`` file, searched exactly, and its
top-k merged into the running answer (score descending, ties to the lower row, as
``exact_search`` orders them), so memory grows with the chunk, not with the corpus.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from index import exact_search
from index.bigann import CsrFile


def merge_topk(
    ids_a: np.ndarray, scores_a: np.ndarray, ids_b: np.ndarray, scores_b: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of two (n, k) answers per row: higher score first, then the lower id;
    -1 slots (no answer) last."""
    ids = np.concatenate([ids_a, ids_b], axis=1)
    scores = np.concatenate([scores_a, scores_b], axis=1)
    missing = ids < 0
    id_key = np.where(missing, np.iinfo(np.int64).max, ids)
    score_key = np.where(missing, np.inf, -scores.astype(np.float64))
    order = np.lexsort((id_key, score_key), axis=-1)[:, :k]
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)


def chunked_exact(
    docs: CsrFile, queries: sp.csr_array, k: int = 10, chunk_rows: int = 500_000
) -> tuple[np.ndarray, np.ndarray, float]:
    """Exact top-``k`` of ``queries`` over all rows of ``docs``.

    Returns (ids int64 (n_queries, k), scores float32 (n_queries, k), seconds), equal to
    ``exact_search`` over the whole matrix.
    """
    n_q = queries.shape[0]
    best_ids = np.full((n_q, k), -1, dtype=np.int64)
    best_scores = np.zeros((n_q, k), dtype=np.float32)
    queries = sp.csr_array(queries)
    if queries.shape[1] < docs.n_cols:  # same columns, read as the corpus' width
        queries = sp.csr_array(
            (queries.data, queries.indices, queries.indptr), shape=(n_q, docs.n_cols)
        )
    start = time.perf_counter()
    for a in tqdm(range(0, docs.n_rows, chunk_rows), desc="exact top-k", unit="chunk"):
        part = docs.rows(a, min(docs.n_rows, a + chunk_rows))
        ids, scores = exact_search(part, queries, k=k)
        ids = np.where(ids >= 0, ids + a, -1)
        best_ids, best_scores = merge_topk(best_ids, best_scores, ids, scores, k)
        del part
    return best_ids, best_scores, time.perf_counter() - start
