"""The block-max index: build kernels against their NumPy twin, codes rounded up, the
same bounds whether built with the index or recomputed from a loaded forward index."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from index import SeismicIndex
from index import reference as ref
from index.block_max import build_block_max, check_block_max, term_scales
from index.kernels.moments import term_log_moments
from index.layout import EMPTY_BLOCK_MAX
from tests.index.conftest import zipf_splade
from tests.index.test_kernels import _forward


@pytest.fixture(scope="module")
def small() -> sp.csr_array:
    return zipf_splade(300, 200, 15, seed=4)


def _decoded(bm) -> np.ndarray:
    """float64 upper bound of every pair (code times its term's scale, exact)."""
    terms = np.repeat(np.arange(bm.scales.shape[0]), np.diff(bm.term_ranges))
    return bm.codes.astype(np.float64) * bm.scales[terms].astype(np.float64)


@pytest.mark.parametrize("packed", [True, False])
@pytest.mark.parametrize("range_size", [1, 8, 64])
@pytest.mark.parametrize("n_chunks", [1, 3, 64])
def test_build_matches_twin(small, packed, range_size, n_chunks) -> None:
    order = np.random.default_rng(3).permutation(small.shape[0]).astype(np.int64)
    bm = build_block_max(*_forward(small, packed), order, 200, n_chunks, range_size)
    want_off, want_ranges, want_max = ref.block_max(
        small.indptr, small.indices, small.data, order, range_size
    )
    np.testing.assert_array_equal(bm.term_ranges[: want_off.shape[0]], want_off)
    assert bm.term_ranges[-1] == want_off[-1]
    np.testing.assert_array_equal(bm.ranges, want_ranges)
    upper = _decoded(bm)
    assert np.all(upper >= want_max)  # rounded up: a sound bound
    terms = np.repeat(np.arange(200), np.diff(bm.term_ranges))
    below = (bm.codes.astype(np.float64) - 1) * bm.scales[terms].astype(np.float64)
    assert np.all((bm.codes == 0) | (below < want_max))  # and the smallest code that is
    assert bm.range_size[0] == range_size and bm.ranges.dtype == np.uint16


def test_scales_cover_the_largest_weight() -> None:
    weights = np.array([0.0, 1e-7, 0.1, 1.0, 3.1415, 65504.0], np.float32)
    scales = term_scales(weights)
    assert np.all(scales.astype(np.float64) * 255 >= weights)
    assert np.all(scales <= np.nextafter((weights / np.float32(255)), np.float32(np.inf)))


def test_many_ranges_use_int32(small) -> None:
    rows = np.tile(np.arange(small.shape[0]), 230)  # 69,000 documents, 69,000 ranges
    big = sp.csr_array(small[rows])
    bm = build_block_max(*_forward(big), np.arange(big.shape[0]), 200, 2, range_size=1)
    assert bm.ranges.dtype == np.int32 and int(bm.ranges.max()) == big.shape[0] - 1


def test_built_equals_recomputed_from_forward(corpus) -> None:
    """The build reads the input order through the document order; the upgrade path reads
    the loaded forward index, already in internal order: the same arrays."""
    docs, _ = corpus
    idx = SeismicIndex.build(docs)
    old = SeismicIndex(
        idx.arrays._replace(block_max=EMPTY_BLOCK_MAX), idx.params, idx.n_docs, idx.dim
    )
    assert idx.can_certify and not old.can_certify
    again = old.with_block_max()
    for name, arr in idx.arrays.block_max._asdict().items():
        got = getattr(again.arrays.block_max, name)
        assert got.dtype == arr.dtype, name
        np.testing.assert_array_equal(got, arr, err_msg=name)


def test_check_block_max_finds_damage(corpus) -> None:
    docs, _ = corpus
    idx = SeismicIndex.build(docs[:500])
    bm = idx.arrays.block_max
    assert check_block_max(bm, idx.n_docs, idx.dim) == []
    bad = bm._replace(ranges=bm.ranges + np.uint16(5000))
    assert "block_max.ranges out of range" in check_block_max(bad, idx.n_docs, idx.dim)
    bad = bm._replace(range_size=np.array([6], np.int64))
    assert check_block_max(bad, idx.n_docs, idx.dim)
    bad = bm._replace(scales=bm.scales[:-1])
    assert "block_max.scales does not match dim" in check_block_max(bad, idx.n_docs, idx.dim)


@pytest.mark.parametrize("packed", [True, False])
def test_term_log_moments_twin(small, packed) -> None:
    offsets, words, terms, bits = _forward(small, packed)
    count, mean, std = term_log_moments(words, terms, bits, 200)
    values = small.data.astype(np.float16).astype(np.float32)
    w_count, w_mean, w_std = ref.term_log_moments(small.indices, values, 200)
    np.testing.assert_array_equal(count, w_count)
    np.testing.assert_allclose(mean, w_mean, atol=1e-9)
    np.testing.assert_allclose(std, w_std, atol=1e-6)
