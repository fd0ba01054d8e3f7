"""The fitted generator: exact lengths, distinct sorted terms, real weights, fitted df."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks.corpora import load_real
from benchmarks.fitted import FittedModel, Generated, alias_table, draw_rows


@pytest.fixture(scope="module")
def real(tiny_vectors: Path) -> sp.csr_array:
    return load_real(tiny_vectors, ["b_docs"])


@pytest.fixture(scope="module")
def model(real: sp.csr_array) -> FittedModel:
    return FittedModel.fit(real, mean_nnz=30.0, iterations=10, sample_docs=4000, seed=1)


def test_alias_table_draws_in_proportion_and_never_zero_weights() -> None:
    weights = np.array([0.0, 1.0, 3.0, 0.0, 6.0])
    prob, alias = alias_table(weights)
    # Exact probabilities implied by the table.
    p = prob / 5.0
    np.add.at(p, alias, (1.0 - prob) / 5.0)
    np.testing.assert_allclose(p, weights / weights.sum(), atol=1e-12)
    indptr = np.arange(0, 20001, dtype=np.int64)  # 20,000 rows of one term each
    terms = np.empty(20000, np.int32)
    values = np.empty(20000, np.float32)
    offsets = np.arange(6, dtype=np.int64)
    draw_rows(indptr, prob, alias, offsets, np.ones(5, np.float32), 3, terms, values)
    counts = np.bincount(terms, minlength=5) / 20000
    assert counts[0] == 0 and counts[3] == 0
    np.testing.assert_allclose(counts, weights / 10, atol=0.02)


def test_rows_have_their_lengths_distinct_sorted_terms_and_real_weights(
    model: FittedModel, real: sp.csr_array
) -> None:
    gen = Generated.make(model, 3000, seed=5, chunk_rows=1000)
    chunk = gen.rows(1000, 2000)
    assert np.array_equal(np.diff(chunk.indptr), gen.lengths[1000:2000])
    assert chunk.has_sorted_indices
    for r in range(0, 1000, 97):
        cols = chunk.indices[chunk.indptr[r] : chunk.indptr[r + 1]]
        assert np.all(np.diff(cols) > 0)
    csc = sp.csc_array(real)
    for j in range(0, chunk.nnz, 331):
        t = chunk.indices[j]
        assert chunk.data[j] in set(csc.data[csc.indptr[t] : csc.indptr[t + 1]].tolist())
    df_real = np.diff(csc.indptr)
    assert np.all(df_real[np.unique(chunk.indices)] > 0)  # only terms that occur
    again = gen.rows(1000, 2000)
    assert (again != chunk).nnz == 0
    assert (gen.rows(0, 1000) != chunk).nnz > 0
    with pytest.raises(ValueError, match="whole chunks"):
        gen.rows(500, 1500)


def test_lengths_keep_the_shape_and_reach_the_target_mean(
    model: FittedModel, real: sp.csr_array
) -> None:
    lengths = model.draw_lengths(20000, seed=2)
    assert abs(lengths.mean() - 30.0) < 0.5
    real_len = np.diff(real.indptr)
    scaled = np.percentile(real_len, [10, 50, 90]) * 30.0 / real_len.mean()
    np.testing.assert_allclose(np.percentile(lengths, [10, 50, 90]), scaled, rtol=0.1, atol=1)
    assert lengths.min() >= 1


def test_document_frequencies_match_the_scaled_real_ones(
    model: FittedModel, real: sp.csr_array
) -> None:
    target = np.bincount(real.indices, minlength=real.shape[1]) / real.shape[0]
    target = target * 30.0 / np.diff(real.indptr).mean()
    got = model.sample_df(8000, seed=9)
    head = np.argsort(-target)[:20]
    np.testing.assert_allclose(got[head], target[head], atol=0.03)
    assert model.fit_error["df_correlation"] > 0.99
    # Plain df-proportional draws (no calibration) flatten the head: the fit matters.
    plain = FittedModel.fit(real, mean_nnz=30.0, iterations=0, sample_docs=4000, seed=1)
    plain_err = np.abs(plain.sample_df(8000, seed=9)[head] - target[head]).mean()
    assert np.abs(got[head] - target[head]).mean() < plain_err / 2
