"""Live recall: the running estimate, its interval, and the controller's moves."""

from __future__ import annotations

import numpy as np
import pytest

from index import SeismicIndex, exact_search, recall_vs_exact
from index.calibration import Calibration, FrontPoint
from index.recall_estimator import RecallController, RecallEstimator, query_recall
from tests.index.conftest import topical_splade


def test_query_recall_ignores_padding_and_takes_any_ids() -> None:
    assert query_recall([3, 1, -1], [1, 2, 3, -1], k=10) == pytest.approx(2 / 3)
    assert query_recall(["a", None], ["a", "b"], k=10) == 0.5
    assert query_recall(np.array([5, 6]), np.array([6, 7]), k=1) == 0.0  # top-1 only
    assert query_recall([1], [-1, -1], k=10) is None


def test_estimate_equals_recall_vs_exact_on_real_answers() -> None:
    docs, queries = topical_splade(4000, 400, 2000, 30, 40, 15, seed=3)
    idx = SeismicIndex.build(docs)
    served, _ = idx.search(queries, k=10, query_cut=2, heap_factor=1.0)
    exact, _ = idx.search(queries, k=10, mode="exact")
    est = RecallEstimator(k=10, window=1000)
    for s, e in zip(served, exact, strict=True):
        est.add(s, e)
    got = est.estimate()
    assert got.n == 400 and got.recall == pytest.approx(recall_vs_exact(served, exact), abs=1e-12)
    assert got.low < got.recall < got.high
    np.testing.assert_array_equal(exact, exact_search(docs, queries, k=10)[0])


def test_interval_covers_the_truth() -> None:
    """Per-query recalls drawn around 0.93: the 95% interval of 300 samples holds the true
    mean in at least 90% of 200 seeded trials, and shrinks with more samples."""
    rng = np.random.default_rng(11)
    hits, widths = 0, []
    for _ in range(200):
        est = RecallEstimator(k=10, window=5000)
        for value in rng.binomial(10, 0.93, size=300) / 10:
            est.add_recall(value)
        e = est.estimate()
        hits += e.low <= 0.93 <= e.high
        widths.append(e.high - e.low)
    assert hits >= 180
    big = RecallEstimator(k=10, window=5000)
    for value in rng.binomial(10, 0.93, size=3000) / 10:
        big.add_recall(value)
    assert big.estimate().high - big.estimate().low < 0.5 * np.mean(widths)
    assert abs(big.estimate().recall - 0.93) < 0.01


def test_window_forgets_and_all_perfect_still_has_an_interval() -> None:
    est = RecallEstimator(k=10, window=100)
    for _ in range(100):
        est.add_recall(0.5)
    for _ in range(100):
        est.add_recall(1.0)
    e = est.estimate()
    assert e.recall == 1.0 and e.n == 100 and e.low < 1.0 and e.high == 1.0
    est.reset()
    assert est.estimate().n == 0 and np.isnan(est.estimate().recall)
    with pytest.raises(ValueError):
        est.add_recall(1.5)


def _calibration() -> Calibration:
    front = tuple(
        FrontPoint(qc, 0.8, recall, 0.005, 100.0 * qc, 10.0 * qc, 10.0 * qc)
        for qc, recall in [(2, 0.90), (4, 0.95), (6, 0.975), (8, 0.99)]
    )
    return Calibration(k=10, queries="pseudo", n_queries=400, front=front, exact_us=100.0)


def _feed(ctrl: RecallController, recall: float, n: int, rng) -> list:
    """Up to ``n`` sampled queries served at ``recall``, stopping at the first move."""
    truth = list(range(10))
    for _ in range(n):
        keep = rng.binomial(10, recall)
        move = ctrl.observe(truth[:keep] + [100 + j for j in range(10 - keep)], truth)
        if move is not None:
            return [move]
    return []


def test_controller_moves_slower_when_recall_drops_and_back() -> None:
    rng = np.random.default_rng(5)
    ctrl = RecallController(_calibration(), target=0.9, min_samples=200, cooldown=1000)
    assert ctrl.current.query_cut == 4  # pick(0.9): calibrated 0.95 >= 0.925
    assert ctrl.search_kwargs() == {"query_cut": 4, "heap_factor": 0.8}
    assert _feed(ctrl, 0.91, 400, rng) == []  # on target: stays
    moves = _feed(ctrl, 0.80, 250, rng)  # e.g. many documents added since calibration
    assert [m.reason for m in moves] == ["below target"] and ctrl.current.query_cut == 6
    assert moves[0].old.query_cut == 4 and moves[0].estimate.high < 0.9
    _feed(ctrl, 0.80, 250, rng)
    _feed(ctrl, 0.80, 250, rng)
    assert ctrl.current is None and ctrl.search_kwargs() == {"mode": "exact"}
    # Exact search is comfortably above, but (8, 0.8) fell below target just now: no
    # swinging back into it until the cooldown's samples have passed.
    assert _feed(ctrl, 1.0, 600, rng) == [] and ctrl.current is None
    moves = _feed(ctrl, 1.0, 600, rng)
    assert [m.reason for m in moves] == ["above target"] and ctrl.current.query_cut == 8
    assert len(ctrl.moves) == 4


def test_controller_starts_where_told_and_shares_an_estimator() -> None:
    shared = RecallEstimator(k=10, window=500)
    ctrl = RecallController(_calibration(), target=0.9, start=None, estimator=shared)
    assert ctrl.current is None and ctrl.estimator is shared
    ctrl.observe(list(range(10)), list(range(10)))
    assert shared.estimate().n == 1
