"""``checked_csr``: given vectors validated and made canonical, bad ones named precisely."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from app.storage.vectors import MAX_WEIGHT, VectorError, checked_csr


@st.composite
def rows_of_pairs(draw: st.DrawFn) -> tuple[int, list[dict[int, float]]]:
    dim = draw(st.integers(1, 60))
    weight = st.floats(0, 100, allow_nan=False, width=32)
    rows = draw(st.lists(st.dictionaries(st.integers(0, dim - 1), weight, max_size=8), max_size=12))
    return dim, rows


@settings(max_examples=200, deadline=None)
@given(rows_of_pairs())
def test_valid_rows_come_back_canonical_and_unchanged(case) -> None:
    dim, rows = case
    rng = np.random.default_rng(len(rows))
    indptr = np.zeros(len(rows) + 1, np.int64)
    cols, vals = [], []
    for i, row in enumerate(rows):
        items = list(row.items())
        rng.shuffle(items)  # any order within a row
        cols += [c for c, _ in items]
        vals += [v for _, v in items]
        indptr[i + 1] = indptr[i] + len(items)
    out = checked_csr(indptr, np.array(cols, np.int64), np.array(vals, np.float64), dim)
    assert out.shape == (len(rows), dim)
    assert out.indices.dtype == np.int32 and out.data.dtype == np.float32
    assert out.has_sorted_indices and (out.data > 0).all()
    expected = np.zeros((len(rows), dim), np.float32)
    for i, row in enumerate(rows):
        for c, v in row.items():
            expected[i, c] = v
    np.testing.assert_array_equal(out.toarray(), expected)


@pytest.mark.parametrize(
    ("cols", "vals", "message"),
    [
        ([1, 2], [1.0, float("nan")], "weight is nan"),
        ([1, 2], [1.0, float("inf")], "weight is inf"),
        ([1, 2], [1.0, -0.5], "must be >= 0"),
        ([1, 2], [1.0, MAX_WEIGHT * 2], "must be <="),
        ([1, 10], [1.0, 1.0], "column 10 is outside"),
        ([1, -1], [1.0, 1.0], "column -1 is outside"),
        ([3, 3], [1.0, 2.0], "column 3 appears twice"),
        ([1, 2**40], [1.0, 1.0], f"column {2**40} is outside"),
    ],
)
def test_bad_vectors_name_the_document(cols, vals, message: str) -> None:
    indptr = np.array([0, 0, len(cols)])
    with pytest.raises(VectorError, match=message) as info:
        checked_csr(indptr, np.array(cols, np.int64), np.array(vals), 10, ["ok", "bad"])
    assert "document 'bad'" in str(info.value)


def test_zero_weights_are_dropped_and_layout_errors_caught() -> None:
    out = checked_csr(np.array([0, 2]), np.array([4, 1]), np.array([0.0, 2.0]), 5)
    assert (out != sparse.csr_array(([2.0], [1], [0, 1]), shape=(1, 5))).nnz == 0
    with pytest.raises(VectorError, match="indptr"):
        checked_csr(np.array([0, 3]), np.array([1]), np.array([1.0]), 5)
    with pytest.raises(VectorError, match="integers"):
        checked_csr(np.array([0, 1]), np.array([1.5]), np.array([1.0]), 5)
