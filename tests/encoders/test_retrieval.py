"""CSR training's own exact search (scipy, no ``index`` import) ranks as ``index.exact_search``
does: the same rows, ties to the lower row, -1 where no document shares a term."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from encoders.training.retrieval import recall_of, top_dense, top_of, top_sparse


def _int_csr(rng: np.random.Generator, n_rows: int, dim: int, density: float) -> sp.csr_array:
    """Small whole-number weights: float32 sums are exact in any order, so scores tie often
    and both searches must break the ties the same way."""
    dense = rng.integers(1, 4, size=(n_rows, dim)) * (rng.random((n_rows, dim)) < density)
    return sp.csr_array(dense.astype(np.float32))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_docs=st.integers(1, 40),
    n_queries=st.integers(1, 6),
    depth=st.integers(1, 50),
)
def test_top_sparse_equals_the_index_exact_search(
    seed: int, n_docs: int, n_queries: int, depth: int
) -> None:
    index = pytest.importorskip("index")
    rng = np.random.default_rng(seed)
    docs = _int_csr(rng, n_docs, 12, 0.25)
    queries = _int_csr(rng, n_queries, 12, 0.3)
    rows, scores = top_sparse(queries, docs, depth)
    want_rows, want_scores = index.exact_search(docs, queries, k=depth)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_array_equal(scores, want_scores)
    assert recall_of(rows[:, :3], want_rows) == pytest.approx(
        index.recall_vs_exact(rows[:, :3], want_rows), nan_ok=True
    )


def test_ties_go_to_the_lower_row_also_at_the_cut() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, 3.0]], dtype=np.float32)
    rows, top = top_of(scores, 3)
    assert rows.tolist() == [[1, 2, 4]] and top.tolist() == [[3.0, 3.0, 3.0]]
    docs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    assert top_dense(docs[[0]], docs, depth=2)[0].tolist() == [[0, 2]]


def test_documents_sharing_no_term_are_not_hits() -> None:
    docs = sp.csr_array(np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=np.float32))
    queries = sp.csr_array(np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32))
    rows, scores = top_sparse(queries, docs, 3)
    assert rows.tolist() == [[1, -1, -1], [-1, -1, -1]]
    assert scores.tolist() == [[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


def test_recall_ignores_pads_and_queries_without_truth() -> None:
    truth = np.array([[1, 2, 3], [4, -1, -1], [-1, -1, -1]])
    found = np.array([[3, 9, 1], [5, 6, -1], [7, 8, 9]])
    assert recall_of(found, truth) == pytest.approx((2 / 3 + 0.0) / 2)
    assert np.isnan(recall_of(found[2:], truth[2:]))


def test_embedding_cache_keeps_each_splits_queries_apart(beir_folder) -> None:
    """One cache serves a collection's train and test splits: the train split's queries,
    embedded first, must not come back as the test split's (a fresh cache once did)."""
    from types import SimpleNamespace

    from encoders.training.evaluate import embeddings_for
    from encoders.training.retrieval import load_beir

    calls: list[list[str]] = []

    def embed(texts, progress=False):
        calls.append(list(texts))
        return np.asarray([[float(len(t)), 1.0] for t in texts], np.float32)

    encoder = SimpleNamespace(embedder=SimpleNamespace(embed=embed))
    train = load_beir(beir_folder / "scifact", "train")
    test = load_beir(beir_folder / "scifact", "test")
    assert (train.split, test.split) == ("train", "test")
    assert train.query_texts != test.query_texts
    cache: dict[str, np.ndarray] = {}
    d_train, q_train = embeddings_for(encoder, train, cache)
    d_test, q_test = embeddings_for(encoder, test, cache)
    np.testing.assert_array_equal(d_train, d_test)  # documents embedded once, shared
    np.testing.assert_array_equal(q_train[:, 0], [len(t) for t in train.query_texts])
    np.testing.assert_array_equal(q_test[:, 0], [len(t) for t in test.query_texts])
    assert sorted(cache) == ["scifact/docs", "scifact/queries", "scifact/seconds",
                             "scifact/train_queries"]  # fmt: skip
    assert len(calls) == 3  # documents, train queries, test queries; nothing twice
    embeddings_for(encoder, test, cache)
    assert len(calls) == 3
