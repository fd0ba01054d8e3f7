"""Certified answers and exact mode: every certified answer equals exact search bit for bit
(ties included), ``mode="exact"`` always does, and the block-max bounds dominate every
document's float32 score (tie-heavy, spread-out and underflowing weights alike)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index import SeismicIndex, exact_search
from index import reference as ref
from index.kernels.bounds import range_bounds
from tests.index.conftest import zipf_splade

HYPO = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _weights(rng: np.random.Generator, kind: str, shape) -> np.ndarray:
    if kind == "ties":  # few distinct values: many equal scores
        return rng.integers(1, 5, size=shape).astype(np.float32) / 2
    if kind == "tiny":  # float16 subnormals and near-underflow float32 products
        return rng.choice(np.array([6e-8, 1.2e-7, 3e-5, 0.5], np.float32), size=shape)
    return rng.lognormal(-0.3, 1.0, size=shape).astype(np.float32)


@st.composite
def problem(draw) -> tuple[sp.csr_array, sp.csr_array, int, dict]:
    n_docs = draw(st.integers(1, 150))
    dim = draw(st.integers(1, 40))
    n_q = draw(st.integers(1, 6))
    kind = draw(st.sampled_from(["ties", "spread", "tiny"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    mask = rng.random((n_docs, dim)) < draw(st.floats(0.02, 0.6))
    docs = np.where(mask, _weights(rng, kind, (n_docs, dim)), 0)
    docs = sp.csr_array(docs.astype(np.float16).astype(np.float32))
    q_mask = rng.random((n_q, dim)) < draw(st.floats(0.05, 0.7))
    # Tiny queries push products below float32's smallest normal number (~1.2e-38).
    q_scale = 10.0 ** -draw(st.integers(25, 38)) if kind == "tiny" else 1.0
    q_vals = _weights(rng, "ties" if kind == "ties" else "spread", (n_q, dim)) * q_scale
    queries = sp.csr_array(np.where(q_mask, q_vals, 0).astype(np.float32))
    build = {
        "n_postings": draw(st.sampled_from([None, 1, 3, 20])),
        "centroid_fraction": draw(st.floats(0.05, 1.0)),
        "summary_energy": draw(st.floats(0.05, 1.0)),
        "seed": 3,
    }
    return docs, queries, draw(st.integers(1, 15)), build


def _brute(docs: sp.csr_array, queries: sp.csr_array, k: int, allowed=None):
    rows = [docs.indices[docs.indptr[r] : docs.indptr[r + 1]] for r in range(docs.shape[0])]
    vals = [docs.data[docs.indptr[r] : docs.indptr[r + 1]] for r in range(docs.shape[0])]
    out = [
        ref.brute_topk(
            rows, vals, np.arange(docs.shape[0]),
            queries.indices[queries.indptr[q] : queries.indptr[q + 1]],
            queries.data[queries.indptr[q] : queries.indptr[q + 1]], k, allowed,
        )
        for q in range(queries.shape[0])
    ]  # fmt: skip
    return np.array([o[0] for o in out]), np.array([o[1] for o in out])


@HYPO
@given(problem(), st.integers(1, 12), st.floats(0.0, 1.5))
def test_certified_answers_are_exact(problem, query_cut, heap_factor) -> None:
    docs, queries, k, build = problem
    idx = SeismicIndex.build(docs, **build)
    ids, scores, certified = idx.search(
        queries, k=k, query_cut=query_cut, heap_factor=heap_factor, certify=True
    )
    want_ids, want_scores = _brute(docs, queries, k)
    for q in np.flatnonzero(certified):
        np.testing.assert_array_equal(ids[q], want_ids[q])
        np.testing.assert_array_equal(scores[q], want_scores[q])
    plain = idx.search(queries, k=k, query_cut=query_cut, heap_factor=heap_factor)
    np.testing.assert_array_equal(plain[0], ids)  # certify never changes the answer


@HYPO
@given(problem(), st.booleans())
def test_exact_mode_equals_exact_search(problem, filtered) -> None:
    docs, queries, k, build = problem
    idx = SeismicIndex.build(docs, **build)
    allowed = None
    if filtered:
        allowed = np.random.default_rng(k).random(docs.shape[0]) < 0.5
    ids, scores, certified = idx.search(queries, k=k, mode="exact", allowed=allowed, certify=True)
    want_ids, want_scores = _brute(docs, queries, k, allowed)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(scores, want_scores)
    assert certified.all()
    if allowed is None:
        ref_ids, ref_scores = exact_search(docs, queries, k=k)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_array_equal(scores, ref_scores)


@HYPO
@given(problem())
def test_range_bounds_dominate_scores(problem) -> None:
    docs, queries, _, build = problem
    idx = SeismicIndex.build(docs, **build)
    bm, fwd = idx.arrays.block_max, idx.arrays.forward
    size = int(bm.range_size[0])
    n_ranges = (idx.n_docs + size - 1) // size
    terms = (fwd.packed >> 16).astype(np.int64)
    values = (fwd.packed & 0xFFFF).astype(np.uint16).view(np.float16).astype(np.float32)
    for q in range(queries.shape[0]):
        qt = queries.indices[queries.indptr[q] : queries.indptr[q + 1]]
        qv = queries.data[queries.indptr[q] : queries.indptr[q + 1]]
        ub = np.zeros(n_ranges, np.float32)
        range_bounds(qt, qv, bm, ub)
        np.testing.assert_array_equal(ub, ref.range_bounds(bm, qt, qv, n_ranges))
        safe = ref.safe_bounds(ub, qt.shape[0])
        dense = np.zeros(idx.dim, np.float32)
        dense[qt] = qv
        for d in range(idx.n_docs):
            a, b = int(fwd.offsets[d]), int(fwd.offsets[d + 1])
            score = ref.dot_in_kernel_order(dense, terms[a:b], values[a:b])
            assert float(score) <= safe[d // size], (d, float(score), safe[d // size])


def test_default_setting_certifies_most_queries(corpus) -> None:
    docs, queries = corpus
    idx = SeismicIndex.build(docs)
    ids, scores, certified = idx.search(queries, k=10, certify=True)
    ref_ids, ref_scores = exact_search(docs, queries, k=10)
    exact = np.all(ids == ref_ids, axis=1) & np.all(scores == ref_scores, axis=1)
    assert not (certified & ~exact).any()
    assert certified.mean() >= 0.8 and certified.sum() == exact.sum()
    one = queries[[0]]
    v_ids, v_scores, v_cert = idx.search_vector(one.indices, one.data, k=10, certify=True)
    np.testing.assert_array_equal(v_ids, ids[0])
    assert v_cert == certified[0]


def test_explain_reports_the_search(corpus) -> None:
    docs, queries = corpus
    idx = SeismicIndex.build(docs)
    q = queries[[3]]
    ex = idx.explain(q.indices, q.data, k=10, query_cut=4, heap_factor=0.9)
    ids, scores, certified = idx.search(q, k=10, query_cut=4, heap_factor=0.9, certify=True)
    assert ex.ids == ids[0].tolist() and ex.scores == scores[0].tolist()
    assert ex.certified == bool(certified[0]) and ex.threshold == float(scores[0, -1])
    heaviest = q.indices[np.argsort(-q.data, kind="stable")]
    assert ex.lists_walked == heaviest[:4].tolist() and ex.lists_skipped == heaviest[4:].tolist()
    assert ex.blocks_skipped == ex.blocks_scored - ex.blocks_visited >= 0
    assert ex.docs_scored > 0 and ex.bound_pairs > 0
    if ex.certified:
        assert ex.unscored_bound <= ex.threshold
    else:
        assert ex.unscored_bound >= ex.threshold
    json.dumps(ex.to_dict())
    exact = idx.explain(q.indices, q.data, k=10, mode="exact")
    assert exact.certified and exact.lists_walked == [] and exact.ranges_checked > 0


def _as_format_2(path) -> None:
    """Turn a saved index into what format 2 wrote: no block-max arrays."""
    manifest = json.loads((path / "manifest.json").read_text())
    for name in [n for n in manifest["arrays"] if n.startswith("block_max.")]:
        (path / manifest["arrays"].pop(name)["file"]).unlink()
    manifest["format_version"] = 2
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_format_2_loads_cannot_certify_and_upgrades(corpus, tmp_path) -> None:
    docs, queries = corpus
    idx = SeismicIndex.build(docs)
    idx.save(tmp_path / "v3")
    idx.save(tmp_path / "v2")
    _as_format_2(tmp_path / "v2")
    old = SeismicIndex.load(tmp_path / "v2")
    assert not old.can_certify
    ids, scores, certified = old.search(queries, k=10, certify=True)
    np.testing.assert_array_equal(ids, idx.search(queries, k=10)[0])
    assert not certified.any()
    ref_ids, ref_scores = exact_search(docs, queries, k=10)
    ex_ids, ex_scores = old.search(queries, k=10, mode="exact")  # scores every document
    np.testing.assert_array_equal(ex_ids, ref_ids)
    np.testing.assert_array_equal(ex_scores, ref_scores)
    q = queries[[0]]
    assert old.explain(q.indices, q.data).certified is None
    old.with_block_max().save(tmp_path / "upgraded")
    new = SeismicIndex.load(tmp_path / "upgraded")
    fresh = SeismicIndex.load(tmp_path / "v3")
    assert new.can_certify
    for name, arr in fresh.arrays.flat().items():
        np.testing.assert_array_equal(new.arrays.flat()[name], arr, err_msg=name)


def test_query_setting_errors(corpus) -> None:
    docs, queries = corpus
    idx = SeismicIndex.build(docs[:300])
    with pytest.raises(ValueError, match="mode"):
        idx.search(queries, mode="fast")
    with pytest.raises(ValueError, match="no calibration"):
        idx.search(queries, recall=0.9)
    with pytest.raises(ValueError, match="not both"):
        idx.search(queries, recall=0.9, query_cut=3)
    with pytest.raises(ValueError, match="recall"):
        idx.search(queries, recall=1.5)


@pytest.mark.parametrize("k", [1, 10, 40])
def test_exact_mode_on_larger_corpus(k) -> None:
    docs = zipf_splade(5000, 3000, 40, seed=21)
    queries = zipf_splade(40, 3000, 20, seed=22)
    idx = SeismicIndex.build(docs)
    ids, scores = idx.search(queries, k=k, mode="exact")
    ref_ids, ref_scores = exact_search(docs, queries, k=k)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(scores, ref_scores)
    assert idx.stats[5] > 0  # ranges scored: the bounds were used, not a scan
