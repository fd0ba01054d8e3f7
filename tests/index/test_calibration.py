"""Calibration: pseudo-queries, the recall/cost front, recall targets met on held-out
queries of a seeded corpus, and the front stored with the index."""

from __future__ import annotations

import json

import numpy as np
import pytest

from index import IndexFormatError, SeismicIndex, exact_search, recall_vs_exact
from index.calibration import Calibration, FrontPoint, pareto_front, recall_per_query
from index.kernels.search import MODE_APPROX, MODE_EXACT
from index.pseudo_queries import doc_vector, pseudo_queries
from tests.index.conftest import topical_splade, zipf_splade

GRID = {"query_cuts": (1, 2, 3, 5, 8, 12), "heap_factors": (1.1, 1.0, 0.9, 0.8, 0.6, 0.4)}


@pytest.fixture(scope="module")
def calibrated():
    """6,000 topical documents of 50 terms, calibrated on pseudo-queries only (the whole
    grid measured: exact search is the cheapest way to any target on so small a corpus);
    200 held-out queries of 20 terms about the same topics.

    Pseudo-queries assume that queries are about what the documents are about: on rows
    with no co-occurrence structure (``zipf_splade``), held-out queries are far harder
    than any query made from documents, and only real calibration queries can tell."""
    docs, held_out = topical_splade(6000, 200, 3000, 40, 50, 20, seed=31)
    idx = SeismicIndex.build(docs)
    idx.calibrate(n_queries=300, n_timed=50, slower_than_exact=float("inf"), **GRID)
    return idx, docs, held_out


def test_targets_are_met_on_held_out_queries(calibrated) -> None:
    """Every explored setting the calibration would pick for a target (calibrated recall
    at least target + margin) reaches the target within 0.02 on real held-out queries,
    whichever of them the (timing-based) cost ranks cheapest."""
    idx, docs, held_out = calibrated
    truth, _ = exact_search(docs, held_out, k=10)
    cal = idx.calibration
    assert cal.queries == "pseudo" and cal.n_queries == 300 and cal.front
    for target in (0.8, 0.9, 0.95):
        need = cal.required(target)
        assert need > target
        for point in cal.points:
            if point.recall >= need:
                ids, _ = idx.search(
                    held_out, k=10, query_cut=point.query_cut, heap_factor=point.heap_factor
                )
                assert recall_vs_exact(ids, truth) >= target - 0.02, (target, point)
        setting = idx.query_setting(recall=target)
        ids = idx.search(held_out, k=10, recall=target)[0]
        assert recall_vs_exact(ids, truth) >= target - 0.02
        if setting.mode == MODE_APPROX:
            picked = cal.pick(target)
            assert (picked.query_cut, picked.heap_factor) == (
                setting.query_cut, setting.heap_factor,
            )  # fmt: skip
            cheaper = [p for p in cal.front if p.cost_us < picked.cost_us]
            assert all(p.recall < need for p in cheaper)


def test_front_is_pareto_and_cheaper_than_exact(calibrated) -> None:
    idx, _, _ = calibrated
    cal = idx.calibration
    costs = [p.cost_us for p in cal.front]
    recalls = [p.recall for p in cal.front]
    assert costs == sorted(costs) and bool(np.all(np.diff(recalls) > 0))
    assert all(p.cost_us < cal.exact_us for p in cal.front)
    for f in cal.front:  # every cheaper setting measured has a lower recall
        assert all(p.recall < f.recall for p in cal.points if p.cost_us < f.cost_us)
    assert idx.query_setting(recall=1.0).mode == MODE_EXACT  # no sample proves recall 1


def test_calibration_is_saved_and_loaded(calibrated, tmp_path) -> None:
    idx, _, held_out = calibrated
    idx.save(tmp_path / "ix")
    loaded = SeismicIndex.load(tmp_path / "ix")
    assert loaded.calibration == idx.calibration
    a = idx.search(held_out, k=10, recall=0.9)
    b = loaded.search(held_out, k=10, recall=0.9)
    np.testing.assert_array_equal(a[0], b[0])
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    manifest["calibration"] = {"front": [{"query_cut": 3}]}
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="calibration"):
        SeismicIndex.load(tmp_path / "ix")


def test_build_from_shards_calibrates_into_the_manifest(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    docs = zipf_splade(800, 500, 20, seed=5)
    rows = [docs.indices[docs.indptr[r] : docs.indptr[r + 1]] for r in range(docs.shape[0])]
    vals = [docs.data[docs.indptr[r] : docs.indptr[r + 1]] for r in range(docs.shape[0])]
    table = pa.table(
        {
            "indices": pa.array(rows, pa.list_(pa.int32())),
            "values": pa.array(vals, pa.list_(pa.float32())),
        }
    )
    pq.write_table(table, tmp_path / "part-0.parquet")
    queries = zipf_splade(40, 500, 8, seed=6)
    idx = SeismicIndex.build_from_shards(
        [tmp_path / "part-0.parquet"], 500, out=tmp_path / "ix", calibrate=True,
        calibration_queries=queries,
    )  # fmt: skip
    assert idx.calibration.queries == "given" and idx.calibration.n_queries == 40
    assert SeismicIndex.load(tmp_path / "ix").calibration == idx.calibration
    with pytest.raises(ValueError, match="calibrate=True"):
        SeismicIndex.build(docs, calibration_queries=queries)


def test_pick_and_step() -> None:
    def point(qc: int, recall: float, cost: float) -> FrontPoint:
        return FrontPoint(qc, 0.8, recall, 0.01, 100.0, cost, cost)

    points = [point(1, 0.80, 10), point(2, 0.91, 20), point(3, 0.90, 30), point(4, 0.97, 40)]
    front = pareto_front(points)
    assert [p.query_cut for p in front] == [1, 2, 4]
    cal = Calibration(k=10, queries="pseudo", n_queries=100, front=front, exact_us=50.0)
    assert cal.required(0.9) == pytest.approx(0.925) and cal.required(0.99) == pytest.approx(0.995)
    assert cal.pick(0.9).query_cut == 4  # needs 0.925: 0.91 is short of it
    assert cal.pick(0.85).query_cut == 2  # needs 0.8875
    assert cal.pick(0.7).query_cut == 1 and cal.pick(0.97) is None  # 0.9775: exact
    assert cal.step(front[0], +1) is front[1] and cal.step(front[-1], +1) is None
    assert cal.step(front[0], -1) is None
    assert Calibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal


def test_recall_per_query_matches_recall_vs_exact() -> None:
    rng = np.random.default_rng(0)

    def answers(n_hits: np.ndarray) -> np.ndarray:  # distinct ids best first, -1 pads
        rows = np.stack([rng.permutation(30)[:11] for _ in range(50)])
        return np.where(np.arange(11) < n_hits[:, None], rows, -1)

    truth = answers(rng.integers(0, 12, size=50))
    found = np.where(rng.random((50, 1)) < 0.5, truth, answers(rng.integers(0, 12, size=50)))
    none = np.full(50, -1)
    got = recall_per_query(found, truth, none, 10)
    for q in range(50):
        want = recall_vs_exact(found[[q], :10], truth[[q], :10])
        assert np.isnan(got[q]) == np.isnan(want) and (np.isnan(want) or got[q] == want)
    source = truth[:, 0].copy()
    left_out = recall_per_query(found, truth, source, 10)
    for q in range(50):
        t = [r for r in truth[q] if r >= 0 and r != source[q]][:10]
        f = [r for r in found[q] if r >= 0 and r != source[q]][:10]
        assert np.isnan(left_out[q]) if not t else left_out[q] == len(set(t) & set(f)) / len(t)


def test_pseudo_queries_are_partial_views_of_their_sources(calibrated) -> None:
    idx, _, _ = calibrated
    fwd = idx.arrays.forward
    q1, src1 = pseudo_queries(fwd, idx.dim, 50, seed=7, n_terms=16)
    q2, src2 = pseudo_queries(fwd, idx.dim, 50, seed=7, n_terms=16)
    assert (q1 != q2).nnz == 0 and np.array_equal(src1, src2)
    internal = np.empty(idx.n_docs, np.int64)
    internal[fwd.doc_rows] = np.arange(idx.n_docs)
    for i in range(50):
        terms = q1.indices[q1.indptr[i] : q1.indptr[i + 1]]
        source_terms, _ = doc_vector(fwd, int(internal[src1[i]]))
        assert 1 <= terms.size <= 16 and set(terms) <= set(source_terms.tolist())
    assert np.all(np.isfinite(q1.data)) and np.all(q1.data > 0)
