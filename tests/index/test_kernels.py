"""Numba kernels against their NumPy twins (index.reference) on seeded random input.

``test_kernels_with_boundscheck`` reruns this module in a subprocess with
``NUMBA_BOUNDSCHECK=1`` (slow: it recompiles every kernel).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from index import SeismicIndex, exact_search
from index import reference as ref
from index.build_steps import f16_bits
from index.kernels.block_scores import list_block_scores
from index.kernels.blocking import sample_positions, splitmix64
from index.kernels.exact import dot_dense_csr, transpose_csr
from index.kernels.forward import forward_dot
from index.kernels.pruning import cap_lists, doc_top_terms, transpose_pruned
from index.kernels.summaries import block_summary, quantize
from tests.index.conftest import zipf_splade


@pytest.fixture(scope="module")
def small() -> sp.csr_array:
    return zipf_splade(400, 300, 20, seed=7)


def test_transpose(small) -> None:
    got = transpose_csr(small.indptr.astype(np.int64), small.indices, small.data, 300)
    want = ref.transpose_csr(small.indptr, small.indices, small.data, 300)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def _forward(m: sp.csr_array, packed: bool = True) -> tuple[np.ndarray, ...]:
    """A forward index of ``m`` in input order, either layout: (offsets, packed, terms, bits)."""
    bits = f16_bits(m.data)
    offsets = m.indptr.astype(np.int64)
    if packed:
        words = (m.indices.astype(np.uint32) << np.uint32(16)) | bits.astype(np.uint32)
        return offsets, words, np.empty(0, np.int32), np.empty(0, np.uint16)
    return offsets, np.empty(0, np.uint32), m.indices.astype(np.int32), bits


@pytest.mark.parametrize("packed", [True, False])
@pytest.mark.parametrize(("threshold", "cap"), [(0.0, 10**9), (0.5, 10**9), (0.0, 7), (0.8, 3)])
def test_transpose_and_cap_lists(small, threshold, cap, packed) -> None:
    thr_bits = int(f16_bits(np.array([threshold], np.float32))[0])
    off, rows, bits = transpose_pruned(*_forward(small, packed), thr_bits, 300, 3)
    if int(np.diff(off).max()) > cap:
        off, rows, bits = cap_lists(off, rows, bits, cap)
    values = bits.view(np.float16).astype(np.float32)
    r_off, r_rows, r_vals = ref.transpose_csr(small.indptr, small.indices, small.data, 300)
    want = ref.prune_lists(r_off, r_rows, r_vals, np.float32(np.float16(threshold)), cap)
    np.testing.assert_array_equal(off, want[0])
    np.testing.assert_array_equal(rows, want[1])
    np.testing.assert_array_equal(values, want[2])


def test_doc_top_terms(small) -> None:
    terms, bits, lengths = doc_top_terms(*_forward(small), 5)
    want = ref.doc_top_terms(small.indptr, small.indices, small.data, 5)
    for r, w in enumerate(want):
        vals = bits[r, : lengths[r]].view(np.float16).astype(np.float32)
        got = sorted(zip(terms[r, : lengths[r]].tolist(), vals.tolist(), strict=True))
        assert got == w


@pytest.mark.parametrize("alpha", [0.1, 0.4, 0.75, 1.0])
def test_block_summary_and_quantize(small, alpha) -> None:
    rng = np.random.default_rng(3)
    mx = np.zeros(300, np.uint16)
    touched = np.empty(300, np.int32)
    counts, sums, tmp = np.empty(256, np.int64), np.empty(256), np.empty(300, np.uint16)
    out_t = np.empty(300, np.int32)
    out_v = np.empty(300, np.float32)
    forward = _forward(small)
    for _ in range(30):
        rows = rng.choice(400, size=rng.integers(1, 12), replace=False).astype(np.int32)
        n = block_summary(rows, *forward, alpha, mx, touched, counts, sums, tmp, out_t, out_v)
        order = np.argsort(out_t[:n])
        w_terms, w_vals = ref.block_summary(rows, small.indptr, small.indices, small.data, alpha)
        np.testing.assert_array_equal(out_t[:n][order], w_terms)
        np.testing.assert_array_equal(out_v[:n][order], w_vals)
        assert not mx.any()
        codes = np.empty(n, np.uint8)
        lo, scale = quantize(out_v[:n], codes)
        w_codes, w_lo, w_scale = ref.quantize(out_v[:n])
        np.testing.assert_array_equal(codes, w_codes)
        assert lo == w_lo and np.isclose(scale, w_scale, rtol=1e-6)
        # Decoded summaries stay within half a quantisation step.
        assert np.all(np.abs(lo + scale * codes - out_v[:n]) <= 0.5 * scale + 1e-6)


@pytest.mark.parametrize("centroid_fraction", [0.05, 0.3])
def test_block_scores_from_stored_layout(centroid_fraction) -> None:
    # Block ids are bit-packed per list: cover narrow and wide lists.
    docs = zipf_splade(6000, 400, 30, seed=5)
    queries = zipf_splade(10, 400, 12, seed=6)
    idx = SeismicIndex.build(
        docs, n_postings=None, centroid_fraction=centroid_fraction, min_cluster_size=0
    )
    widths = set()
    acc = np.empty(idx._max_blocks, np.float32)
    qsum = np.empty(idx._max_blocks, np.float32)
    lists, summaries = idx.arrays.postings, idx.arrays.summaries
    for q in range(queries.shape[0]):
        qt = queries.indices[queries.indptr[q] : queries.indptr[q + 1]].astype(np.int32)
        qv = queries.data[queries.indptr[q] : queries.indptr[q + 1]]
        matches = np.empty(2 * qt.shape[0], np.int64)
        for t in qt:
            nb = list_block_scores(int(t), qt, qv, lists, summaries, acc, qsum, matches)
            widths.add(nb > 256)
            want = ref.list_block_scores(lists, summaries, int(t), qt, qv)
            np.testing.assert_allclose(acc[:nb], want, rtol=1e-5, atol=1e-6)
    assert widths == ({False, True} if centroid_fraction > 0.1 else {False})


@pytest.mark.parametrize("dim", [300, 70_000])
def test_forward_dot_sums_in_the_documented_order(dim) -> None:
    """Both forward layouts (packed below 65,536 terms, split above) and the exact
    kernel's CSR dot give the twin's float32 sum in four interleaved partials, bit for bit."""
    rng = np.random.default_rng(11)
    docs = zipf_splade(300, dim, 25, seed=12)
    idx = SeismicIndex.build(docs, n_postings=None)
    forward = idx.arrays.forward
    dense = np.zeros(dim, np.float32)
    dense[rng.choice(dim, size=40, replace=False)] = rng.random(40, dtype=np.float32)
    indptr = docs.indptr.astype(np.int64)
    for d in range(idx.n_docs):
        row = int(forward.doc_rows[d])
        a, e = int(forward.offsets[d]), int(forward.offsets[d + 1])
        terms = docs.indices[indptr[row] : indptr[row + 1]]
        values = docs.data[indptr[row] : indptr[row + 1]]
        want = ref.dot_in_kernel_order(dense, terms, values)
        got = forward_dot(dense, forward.packed, forward.terms, forward.values, a, e)
        assert got == want
        assert dot_dense_csr(dense, indptr, docs.indices, docs.data, row) == want


def test_exact_search_vs_dense_twin(small) -> None:
    queries = zipf_splade(25, 300, 10, seed=8)
    ids, scores = exact_search(small, queries, k=12)
    w_ids, w_scores = ref.exact_topk(small.toarray(), queries.toarray(), 12)
    np.testing.assert_array_equal(ids, w_ids)
    np.testing.assert_allclose(scores, w_scores, rtol=1e-5)


def test_random_sampling_twin() -> None:
    state = np.uint64(12345)
    py_state = 12345
    for _ in range(5):
        state, r = splitmix64(np.uint64(state))  # the kernels call it with uint64
        py_state, py_r = ref.splitmix64(py_state)
        assert int(state) == py_state and int(r) == py_r
    for n, m, seed in [(10, 3, 1), (1000, 100, 7), (5, 5, 2**63 + 5)]:
        np.testing.assert_array_equal(
            sample_positions(n, m, np.uint64(seed)), ref.sample_positions(n, m, seed)
        )


# In the default run (STYLE: the kernels' twins are compared with NUMBA_BOUNDSCHECK=1 in the
# test run), though it takes two minutes: the heavy tests it runs besides are left out.
def test_kernels_with_boundscheck(tmp_path) -> None:
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "not slow",
            "-k",  # not itself: it is in the default run, and would start itself again
            "not test_kernels_with_boundscheck",
            "-p",
            "no:cacheprovider",
            str(Path(__file__)),
            str(Path(__file__).with_name("test_search.py")),
            str(Path(__file__).with_name("test_block_max.py")),
            str(Path(__file__).with_name("test_certify.py")),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
