"""Timing protocol of bench_index: warm-up before timing, interleaving, per-query minimum."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks.index_report import fastest, format_report, summaries
from benchmarks.index_systems import Ours, OursExact, run_points, time_point, warm_up
from index import SeismicIndex, exact_search


class Recorder:
    """A fake system answering query i with row i; logs every call."""

    def __init__(self, name: str, log: list, delays: itertools.cycle | None = None) -> None:
        self.name, self.log, self.delays = name, log, delays

    def prepare(self, queries: sp.csr_array) -> list[int]:
        return list(range(queries.shape[0]))

    def search_one_raw(self, q: int, qc: int, hf: float) -> Any:
        self.log.append((self.name, "one", q, qc))
        if self.delays is not None:
            _spin(next(self.delays))
        return [q]

    def search_batch_raw(self, qs: list, qc: int, hf: float, threads: int) -> Any:
        self.log.append((self.name, "batch", len(qs), qc))
        return [[q] for q in qs]

    def ids(self, raw: Any) -> list[int]:
        return list(raw)

    def batch_ids(self, raw: Any) -> list[list[int]]:
        return [list(r) for r in raw]


def _spin(seconds: float) -> None:
    import time

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_warm_up_touches_every_query_of_every_system_then_a_batch() -> None:
    log: list = []
    systems = {"a": Recorder("a", log), "b": Recorder("b", log)}
    prepared = {n: list(range(5)) for n in systems}
    warm_up(systems, prepared, (3, 0.9), threads=2)
    assert log == [("a", "one", i, 3) for i in range(5)] + [("a", "batch", 5, 3)] + [
        ("b", "one", i, 3) for i in range(5)
    ] + [("b", "batch", 5, 3)]


def test_time_point_interleaves_alternately_and_warms_each_point() -> None:
    log: list = []
    systems = {"a": Recorder("a", log), "b": Recorder("b", log)}
    prepared = {n: list(range(4)) for n in systems}
    out = time_point(systems, prepared, (7, 0.8), threads=2, repeat=2, warm=2)
    warm = [("a", "one", 0, 7), ("a", "one", 1, 7), ("b", "one", 0, 7), ("b", "one", 1, 7)]
    assert log[:4] == warm
    timed = [(n, q) for n, kind, q, _ in log[4:] if kind == "one"]
    one_round = [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2), ("b", 3), ("a", 3)]
    assert timed == one_round * 2
    assert [e for e in log if e[1] == "batch"] == [("a", "batch", 4, 7), ("b", "batch", 4, 7)] * 2
    assert out["a"]["found"] == [[0], [1], [2], [3]]
    assert out["b"]["batch_found"] == [[0], [1], [2], [3]]


def test_time_point_keeps_the_per_query_minimum() -> None:
    # Query 0 is slow in round one only, query 1 in round two only: both minima are fast.
    delays = itertools.cycle([0.0, 0.0, 0.02, 0.0, 0.0, 0.02])  # 2 warm calls, then rounds
    log: list = []
    systems = {"a": Recorder("a", log, delays)}
    out = time_point(systems, {"a": [0, 1]}, (1, 1.0), threads=1, repeat=2, warm=2)
    assert out["a"]["wall"].max() < 0.01
    with pytest.raises(ValueError, match="repeat"):
        time_point(systems, {"a": [0, 1]}, (1, 1.0), threads=1, repeat=0)


def test_run_points_with_our_index_is_exact_without_pruning() -> None:
    rng = np.random.default_rng(0)
    docs = sp.random_array((300, 40), density=0.2, format="csr", rng=rng, dtype=np.float32)
    queries = sp.random_array((12, 40), density=0.2, format="csr", rng=rng, dtype=np.float32)
    index = SeismicIndex.build(docs, n_postings=None)
    truth, _ = exact_search(docs, queries, k=10)
    rows = run_points({"ours": Ours(index)}, queries, truth, [(40, 0.0), (2, 1.0)], threads=2)
    assert [(r["query_cut"], r["heap_factor"]) for r in rows] == [(40, 0.0), (2, 1.0)]
    assert rows[0]["recall@10"] == 1.0 and rows[0]["recall@10_batch"] == 1.0
    assert rows[0]["qps_allthreads"] > 0 and rows[0]["latency_1thread_us"]["mean"] > 0


def test_exact_mode_is_timed_once_with_recall_one() -> None:
    rng = np.random.default_rng(1)
    docs = sp.random_array((400, 50), density=0.2, format="csr", rng=rng, dtype=np.float32)
    queries = sp.random_array((10, 50), density=0.2, format="csr", rng=rng, dtype=np.float32)
    index = SeismicIndex.build(docs)
    truth, _ = exact_search(docs, queries, k=10)
    systems = {"ours": Ours(index), "ours-exact": OursExact(index)}
    rows = run_points(systems, queries, truth, [(1, 1.0), (2, 1.0)], threads=1)
    assert [r["system"] for r in rows] == ["ours", "ours-exact", "ours"]
    exact = rows[1]
    assert exact["recall@10"] == 1.0 and exact["recall@10_batch"] == 1.0


def row(system: str, qc: int, recall: float, single: float, batch: float, rb: float) -> dict:
    return {
        "system": system,
        "query_cut": qc,
        "heap_factor": 0.9,
        "recall@10": recall,
        "recall@10_batch": rb,
        "latency_1thread_us": {"mean": single, "p50": single, "p99": single},
        "cpu_1thread_us_mean": single,
        "latency_allthreads_us_mean": batch,
        "qps_allthreads": 1e6 / batch,
    }


def test_summaries_pick_the_fastest_point_reaching_each_target() -> None:
    rows = [
        row("ours", 3, 0.91, 50, 30, 0.91),
        row("ours", 5, 0.96, 80, 45, 0.96),
        row("ours", 10, 0.99, 120, 60, 0.99),
        row("pyseismic", 5, 0.97, 70, 50, 0.89),
        row("pyseismic", 10, 0.985, 100, 70, 0.985),
    ]
    assert fastest(rows, "ours", 0.95, allthreads=False)["query_cut"] == 5
    assert fastest(rows, "ours", 0.999, allthreads=False) is None
    s = summaries(rows, ["ours", "pyseismic"])
    assert s["best_at_recall"]["0.98"]["ours"]["query_cut"] == 10
    assert s["best_at_recall"]["0.95"]["pyseismic"]["query_cut"] == 5
    # The big-ann metric uses the batch answers' recall: pyseismic's qc 5 batch misses 0.9.
    assert s["bigann_qps_at_recall_0.9"]["ours"]["qps_allthreads"] == pytest.approx(1e6 / 30)
    assert s["bigann_qps_at_recall_0.9"]["pyseismic"]["query_cut"] == 10
    report = {
        "threads": 2,
        "repeat": 1,
        "ground_truth": "exact_search",
        "systems": {"ours": {"build_seconds": 1.0, "index_bytes": 10**6}},
        "points": rows,
        **s,
    }
    text = format_report(report)
    assert "QPS over 2 threads at R@10 >= 0.9" in text and "R@10 >= 0.98" in text
