"""Bad input gets a clear ValueError before any kernel runs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from index import SeismicIndex, exact_search
from index.validation import as_csr

GOOD = sp.csr_array(np.array([[0.5, 0, 1.0], [0, 2.0, 0]], dtype=np.float32))


def _with_data(data: list[float]) -> sp.csr_array:
    return sp.csr_array((np.array(data, dtype=np.float32), [0, 1], [0, 1, 2]), shape=(2, 3))


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.ones((2, 3), dtype=np.float32), "scipy.sparse"),
        ([[1.0]], "scipy.sparse"),
        (sp.csr_array((0, 3), dtype=np.float32), "empty"),
        (sp.csr_array((2, 0), dtype=np.float32), "empty"),
        (sp.csr_array(np.array([[1 + 1j, 0]])), "dtype"),
        (sp.csr_array(np.array([[True, False]])), "dtype"),
        (_with_data([np.nan, 1.0]), "NaN"),
        (_with_data([np.inf, 1.0]), "NaN or infinite"),
        (_with_data([-0.5, 1.0]), "negative"),
    ],
)
def test_bad_matrices(matrix, message) -> None:
    with pytest.raises(ValueError, match=message):
        as_csr(matrix, name="docs")
    with pytest.raises(ValueError, match=message):
        exact_search(matrix, GOOD, k=1)
    with pytest.raises(ValueError, match=message):
        SeismicIndex.build(matrix)


def test_column_out_of_range() -> None:
    bad = sp.csr_array(
        (np.array([1.0], dtype=np.float32), np.array([7]), np.array([0, 1])), shape=(1, 3)
    )
    with pytest.raises(ValueError, match="column index outside"):
        as_csr(bad, name="docs")


def test_canonicalises_duplicates_and_zeros() -> None:
    m = sp.csr_array(
        (np.array([1.0, 2.0, 0.0], dtype=np.float64), np.array([2, 2, 0]), np.array([0, 3])),
        shape=(1, 3),
    )
    c = as_csr(m, name="docs")
    assert c.indices.tolist() == [2] and c.data.tolist() == [3.0]
    assert c.indices.dtype == np.int32 and c.data.dtype == np.float32
    assert c.indptr.dtype == np.int64


def test_bad_search_params() -> None:
    idx = SeismicIndex.build(GOOD)
    for kwargs, message in [
        ({"k": 0}, "k must be"),
        ({"query_cut": 0}, "query_cut"),
        ({"heap_factor": -1.0}, "heap_factor"),
        ({"heap_factor": float("nan")}, "heap_factor"),
        ({"allowed": np.ones(5, dtype=bool)}, "allowed"),
    ]:
        with pytest.raises(ValueError, match=message):
            idx.search(GOOD, **kwargs)
    with pytest.raises(ValueError, match="dim"):
        idx.search(sp.csr_array(([1.0], ([0], [5])), shape=(1, 6)))
    with pytest.raises(ValueError, match="term ids"):
        idx.search_vector(np.array([9]), np.array([1.0]))
    with pytest.raises(ValueError, match="finite"):
        idx.search_vector(np.array([0]), np.array([-1.0]))


def test_bad_build_params() -> None:
    for kwargs in [
        {"n_postings": 0},
        {"centroid_fraction": 0.0},
        {"summary_energy": 1.5},
        {"doc_cut": 0},
        {"seed": -1},
        {"max_fraction": 0.5},
        {"nonsense": 1},
    ]:
        with pytest.raises(ValueError):
            SeismicIndex.build(GOOD, **kwargs)


def test_weights_too_large_for_float16() -> None:
    with pytest.raises(ValueError, match="float16"):
        SeismicIndex.build(_with_data([1e6, 1.0]))


def test_query_params_validate_once_and_merge(corpus) -> None:
    from index import QueryParams

    assert QueryParams() == QueryParams(query_cut=10, heap_factor=0.8, global_order=False)
    for bad in ({"query_cut": 0}, {"query_cut": 2.5}, {"query_cut": True}, {"heap_factor": -1},
                {"heap_factor": float("inf")}, {"global_order": "yes"}):  # fmt: skip
        with pytest.raises(ValueError, match=next(iter(bad))):
            QueryParams(**bad)
    with pytest.raises(ValueError, match="unknown query parameters"):
        QueryParams.from_dict({"query_cutt": 3})
    base = QueryParams(query_cut=5)
    assert QueryParams.from_dict({"heap_factor": 0.5}, base) == QueryParams(5, 0.5, False)
    docs, queries = corpus
    idx = SeismicIndex.build(docs)
    by_params = idx.search(queries, k=5, params=QueryParams(query_cut=3, heap_factor=0.9))
    by_keywords = idx.search(queries, k=5, query_cut=3, heap_factor=0.9)
    np.testing.assert_array_equal(by_params[0], by_keywords[0])
    # A keyword overrides the params it is given with.
    over = idx.search(queries, k=5, params=QueryParams(query_cut=50), query_cut=3, heap_factor=0.9)
    np.testing.assert_array_equal(over[0], by_keywords[0])
    with pytest.raises(ValueError, match="params must be"):
        idx.search(queries, k=5, params={"query_cut": 3})
