"""exact_search against a dense NumPy computation, ties, empty rows, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from index import exact_search, recall_vs_exact


def dense_topk(docs: sp.csr_array, queries: sp.csr_array, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference: every score, sorted by (score desc, row asc), zero scores dropped."""
    scores = (queries @ docs.T).toarray().astype(np.float32)
    ids = np.full((scores.shape[0], k), -1, dtype=np.int64)
    out = np.zeros((scores.shape[0], k), dtype=np.float32)
    for i, row in enumerate(scores):
        order = np.lexsort((np.arange(row.size), -row))
        order = order[row[order] > 0][:k]
        ids[i, : order.size] = order
        out[i, : order.size] = row[order]
    return ids, out


def test_matches_dense_reference(corpus) -> None:
    docs, queries = corpus
    ids, scores = exact_search(docs, queries, k=10)
    ref_ids, ref_scores = dense_topk(docs, queries, 10)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    assert ids.shape == scores.shape == (queries.shape[0], 10)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5)


def test_ties_go_to_lower_row() -> None:
    docs = sp.csr_array(np.array([[0, 1.0], [1.0, 0], [0, 1.0], [0, 1.0]], dtype=np.float32))
    queries = sp.csr_array(np.array([[1.0, 1.0]], dtype=np.float32))
    ids, scores = exact_search(docs, queries, k=3)
    assert ids.tolist() == [[0, 1, 2]]
    assert scores.tolist() == [[1.0, 1.0, 1.0]]


def test_empty_query_and_empty_docs_pad() -> None:
    docs = sp.csr_array(np.array([[0, 0, 0], [0, 2.0, 0]], dtype=np.float32))
    queries = sp.csr_array(np.array([[0, 0, 0], [1.0, 0, 0], [0, 1.0, 0]], dtype=np.float32))
    ids, scores = exact_search(docs, queries, k=2)
    assert ids.tolist() == [[-1, -1], [-1, -1], [1, -1]]
    assert scores.tolist() == [[0.0, 0.0], [0.0, 0.0], [2.0, 0.0]]


def test_accepts_csr_matrix_and_other_dtypes(corpus) -> None:
    docs, queries = corpus
    a = exact_search(sp.csr_matrix(docs.astype(np.float64)), sp.csr_matrix(queries), k=5)
    b = exact_search(docs, queries, k=5)
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("k", [0, -1, 1.5, "3", True])
def test_bad_k(corpus, k) -> None:
    docs, queries = corpus
    with pytest.raises(ValueError, match="k must be"):
        exact_search(docs, queries, k=k)


def test_query_column_out_of_range(corpus) -> None:
    docs, _ = corpus
    wide = sp.csr_array(([1.0], ([0], [docs.shape[1] + 5])), shape=(1, docs.shape[1] + 10))
    with pytest.raises(ValueError, match="column"):
        exact_search(docs, wide, k=3)


def test_recall_vs_exact_ignores_pads_and_queries_without_hits() -> None:
    exact = np.array([[3, 2, 9], [4, -1, -1], [-1, -1, -1]])
    approx = np.array([[1, 2, 3], [-1, -1, -1], [5, 6, 7]])
    assert recall_vs_exact(approx, exact) == pytest.approx((2 / 3 + 0.0) / 2)
    assert np.isnan(recall_vs_exact(approx[2:], exact[2:]))


def test_underflowing_scores_keep_their_order() -> None:
    """A document whose products underflow to 0.0 is a hit, but below one scoring a tiny
    positive (subnormal) amount (the accumulator once marked it with 1e-38 and ranked it
    first); found by the certification property tests."""
    docs = sp.csr_array(np.array([[6e-8, 0], [0, 0.5]], np.float32))
    queries = sp.csr_array(np.array([[1e-38, 1e-39]], np.float32))
    ids, scores = exact_search(docs, queries, k=2)
    np.testing.assert_array_equal(ids, [[1, 0]])
    np.testing.assert_array_equal(scores, [[np.float32(1e-39) * np.float32(0.5), 0.0]])
