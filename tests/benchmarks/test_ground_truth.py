"""Chunked exact top-k over a .csr file equals exact_search over the whole matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks.ground_truth import chunked_exact, merge_topk
from index import exact_search
from index.bigann import read_csr, write_csr


def test_merge_topk_orders_by_score_then_row_and_puts_missing_last() -> None:
    ids, scores = merge_topk(
        np.array([[4, -1, -1]]),
        np.array([[2.0, 0.0, 0.0]], np.float32),
        np.array([[9, 1, -1]]),
        np.array([[2.0, 3.0, 0.0]], np.float32),
        k=4,
    )
    assert ids.tolist() == [[1, 4, 9, -1]]
    assert scores.tolist() == [[3.0, 2.0, 2.0, 0.0]]


@pytest.mark.parametrize("chunk_rows", [1, 37, 250, 1000])
def test_chunked_equals_whole_even_with_ties(tmp_path: Path, chunk_rows: int) -> None:
    rng = np.random.default_rng(8)
    docs = sp.random_array((250, 30), density=0.1, format="csr", rng=rng, dtype=np.float32)
    docs.data = np.ceil(docs.data * 3)  # few distinct weights: many tied scores
    queries = sp.random_array((20, 20), density=0.2, format="csr", rng=rng, dtype=np.float32)
    queries.data = np.ceil(queries.data * 2)
    path = write_csr(tmp_path / "docs.csr", docs)
    ids, scores, seconds = chunked_exact(read_csr(path), queries, k=10, chunk_rows=chunk_rows)
    want_ids, want_scores = exact_search(docs, sp.csr_array(queries, shape=(20, 30)), k=10)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(scores, want_scores)
    assert seconds >= 0
