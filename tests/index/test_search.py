"""SeismicIndex search: exhaustive settings equal exact search; recall with defaults."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index import SeismicIndex, exact_search, recall_vs_exact
from tests.index.conftest import zipf_splade

EXHAUSTIVE = {"query_cut": 10_000, "heap_factor": 0.0}


@st.composite
def sparse_problem(draw) -> tuple[sp.csr_array, sp.csr_array, int]:
    n_docs = draw(st.integers(1, 60))
    dim = draw(st.integers(1, 40))
    n_q = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)

    def matrix(n: int, density: float) -> sp.csr_array:
        mask = rng.random((n, dim)) < density
        # Few distinct float16 values: many exact ties, all exactly representable.
        vals = rng.integers(1, 8, size=(n, dim)).astype(np.float16).astype(np.float32) / 4
        return sp.csr_array(np.where(mask, vals, 0).astype(np.float32))

    docs = matrix(n_docs, draw(st.floats(0.0, 0.5)))
    queries = matrix(n_q, draw(st.floats(0.0, 0.6)))
    k = draw(st.integers(1, 12))
    return docs, queries, k


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sparse_problem(), st.floats(0.05, 1.0), st.floats(0.1, 1.0))
def test_exhaustive_equals_exact(problem, centroid_fraction, summary_energy) -> None:
    docs, queries, k = problem
    idx = SeismicIndex.build(
        docs,
        n_postings=None,
        centroid_fraction=centroid_fraction,
        summary_energy=summary_energy,
        seed=3,
    )
    ids, scores = idx.search(queries, k=k, **EXHAUSTIVE)
    ref_ids, ref_scores = exact_search(docs, queries, k=k)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(scores, ref_scores)


def test_exhaustive_equals_exact_on_larger_corpus(corpus) -> None:
    docs, queries = corpus
    idx = SeismicIndex.build(docs, n_postings=None)
    ids, scores = idx.search(queries, k=10, **EXHAUSTIVE)
    ref_ids, ref_scores = exact_search(docs, queries, k=10)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(scores, ref_scores)


def test_default_recall_bound() -> None:
    docs = zipf_splade(8000, 3000, 60, seed=11)
    queries = zipf_splade(100, 3000, 20, seed=12)
    idx = SeismicIndex.build(docs)
    ids, _ = idx.search(queries, k=10)
    ref, _ = exact_search(docs, queries, k=10)
    assert recall_vs_exact(ids, ref) >= 0.9


def test_single_query_paths_agree_with_batch(corpus) -> None:
    docs, queries = corpus
    idx = SeismicIndex.build(docs)
    ids, scores = idx.search(queries, k=7)
    for q in range(0, queries.shape[0], 7):
        row = queries[[q]]
        one_ids, one_scores = idx.search(row, k=7)
        np.testing.assert_array_equal(one_ids[0], ids[q])
        v_ids, v_scores = idx.search_vector(row.indices, row.data, k=7)
        np.testing.assert_array_equal(v_ids, ids[q])
        np.testing.assert_array_equal(v_scores, scores[q])


def test_allowed_mask_filters_inside_search(corpus) -> None:
    docs, queries = corpus
    idx = SeismicIndex.build(docs, n_postings=None)
    allowed = np.zeros(docs.shape[0], dtype=bool)
    allowed[::3] = True
    ids, _ = idx.search(queries, k=10, allowed=allowed, **EXHAUSTIVE)
    kept = np.flatnonzero(allowed)
    ref, _ = exact_search(docs[kept], queries, k=10)
    ref = np.where(ref >= 0, kept[np.maximum(ref, 0)], -1)
    np.testing.assert_array_equal(ids, ref)


def test_build_is_deterministic(corpus) -> None:
    docs, _ = corpus
    a = SeismicIndex.build(docs, seed=5)
    b = SeismicIndex.build(docs, seed=5)
    for name, arr in a.arrays.flat().items():
        np.testing.assert_array_equal(arr, b.arrays.flat()[name], err_msg=name)


def test_pruning_respects_budget(corpus) -> None:
    docs, _ = corpus
    idx = SeismicIndex.build(docs, n_postings=20, max_fraction=1.5)
    lists = idx.arrays.postings
    lengths = np.diff(lists.block_offsets)
    assert lengths.min() >= 1
    per_list = np.add.reduceat(lengths, lists.list_blocks[:-1][np.diff(lists.list_blocks) > 0])
    assert per_list.max() <= 30
    assert lists.postings.shape[0] <= 20 * np.count_nonzero(np.diff(docs.indptr) >= 0)


def test_empty_queries_and_rows(corpus) -> None:
    docs, _ = corpus
    idx = SeismicIndex.build(docs)
    empty = sp.csr_array((3, docs.shape[1]), dtype=np.float32)
    ids, scores = idx.search(empty, k=4)
    assert (ids == -1).all() and (scores == 0).all()
    assert idx.n_docs == docs.shape[0] and idx.dim == docs.shape[1]


def test_warm_up_compiles_both_paths_and_leaves_no_trace(corpus) -> None:
    docs, queries = corpus
    idx = SeismicIndex.build(docs)
    idx.warm_up()
    assert not idx.stats.any()
    a = idx.search(queries, k=10)
    b = idx.search(queries[:3], k=10)
    np.testing.assert_array_equal(a[0][:3], b[0])
