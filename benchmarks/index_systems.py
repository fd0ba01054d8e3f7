"""Timing our index and a peer on the same queries, in the same process, alike.

Single-thread latency: one query per call, the systems interleaved query by query (which
one goes first alternates with the query's parity, so that neither always runs on the
other's warm caches), ``repeat`` rounds keeping each query's minimum for every system.
All-thread latency: one batch call over all queries, ``repeat`` times, keeping the fastest.

Nothing compiled or paged in for the first time is ever timed: before the first point
every system answers every query once, one by one and as a batch, untimed; before each
point it answers the first ``warm`` queries again. Only the raw search call sits inside a
timed region; turning answers into row numbers happens outside it.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from index import SeismicIndex, recall_vs_exact

WARM_QUERIES = 8


class System(Protocol):
    """What ``run_points`` needs from a searchable index (ours or a peer)."""

    def prepare(self, queries: sp.csr_array) -> list: ...
    def search_one_raw(self, q: Any, qc: int, hf: float) -> Any: ...
    def search_batch_raw(self, qs: list, qc: int, hf: float, threads: int) -> Any: ...
    def ids(self, raw: Any) -> list[int]: ...
    def batch_ids(self, raw: Any) -> list[list[int]]: ...


class Ours:
    """Our ``SeismicIndex`` behind the :class:`System` calls."""

    def __init__(self, index: SeismicIndex, k: int = 10) -> None:
        self.index = index
        self.k = k
        self._batch: sp.csr_array | None = None

    def prepare(self, queries: sp.csr_array) -> list[tuple[np.ndarray, np.ndarray]]:
        q = sp.csr_array(queries)
        q.sort_indices()
        self._batch = q
        return [
            (
                np.ascontiguousarray(q.indices[a:b], dtype=np.int32),
                np.ascontiguousarray(q.data[a:b], dtype=np.float32),
            )
            for a, b in zip(q.indptr[:-1], q.indptr[1:], strict=True)
        ]

    def search_one_raw(self, q: tuple[np.ndarray, np.ndarray], qc: int, hf: float) -> Any:
        return self.index.search_vector(q[0], q[1], k=self.k, query_cut=qc, heap_factor=hf)[0]

    def search_batch_raw(self, qs: list, qc: int, hf: float, threads: int) -> Any:
        # ``threads`` is Numba's setting, made once by the caller (numba.set_num_threads).
        return self.index.search(self._batch, k=self.k, query_cut=qc, heap_factor=hf)[0]

    @staticmethod
    def ids(raw: np.ndarray) -> list[int]:
        return [int(i) for i in raw if i >= 0]

    @staticmethod
    def batch_ids(raw: np.ndarray) -> list[list[int]]:
        return [[int(i) for i in row if i >= 0] for row in raw]


class OursExact(Ours):
    """Our index in ``mode="exact"`` (block-max safe early termination: recall 1 by
    construction): the knobs do not apply, so ``run_points`` times it once."""

    point_free = True

    def search_one_raw(self, q: tuple[np.ndarray, np.ndarray], qc: int, hf: float) -> Any:
        return self.index.search_vector(q[0], q[1], k=self.k, mode="exact")[0]

    def search_batch_raw(self, qs: list, qc: int, hf: float, threads: int) -> Any:
        return self.index.search(self._batch, k=self.k, mode="exact")[0]


def stats_us(seconds: np.ndarray) -> dict[str, float]:
    """Mean, median and 99th percentile of per-query seconds, in microseconds."""
    a = np.asarray(seconds, dtype=np.float64) * 1e6
    return {
        "mean": float(a.mean()),
        "p50": float(np.percentile(a, 50)),
        "p99": float(np.percentile(a, 99)),
    }


def warm_up(
    systems: dict[str, System], prepared: dict[str, list], point: tuple[int, float], threads: int
) -> None:
    """One untimed pass over every query (one by one, then as one batch) for every system."""
    qc, hf = point
    for name, system in systems.items():
        for q in prepared[name]:
            system.search_one_raw(q, qc, hf)
        system.search_batch_raw(prepared[name], qc, hf, threads)


def time_point(
    systems: dict[str, System],
    prepared: dict[str, list],
    point: tuple[int, float],
    threads: int,
    repeat: int = 1,
    warm: int = WARM_QUERIES,
) -> dict[str, dict]:
    """Per system: per-query wall and thread-CPU seconds (minimum over ``repeat`` rounds),
    the answers of the first round, and the fastest batch (seconds and answers)."""
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    qc, hf = point
    names = list(systems)
    n = len(prepared[names[0]])
    for name in names:
        for q in prepared[name][:warm]:
            systems[name].search_one_raw(q, qc, hf)
    out = {
        name: {
            "wall": np.full(n, np.inf),
            "cpu": np.full(n, np.inf),
            "found": [],
            "batch_seconds": np.inf,
            "batch_found": [],
        }
        for name in names
    }
    for r in range(repeat):
        for i in range(n):
            for name in names if i % 2 == 0 else names[::-1]:
                system, q, res = systems[name], prepared[name][i], out[name]
                c0, t0 = time.thread_time(), time.perf_counter()
                raw = system.search_one_raw(q, qc, hf)
                t1, c1 = time.perf_counter(), time.thread_time()
                res["wall"][i] = min(res["wall"][i], t1 - t0)
                res["cpu"][i] = min(res["cpu"][i], c1 - c0)
                if r == 0:
                    res["found"].append(system.ids(raw))
    for r in range(repeat):
        for name in names:
            t0 = time.perf_counter()
            raw = systems[name].search_batch_raw(prepared[name], qc, hf, threads)
            seconds = time.perf_counter() - t0
            res = out[name]
            res["batch_seconds"] = min(res["batch_seconds"], seconds)
            if r == 0:
                res["batch_found"] = systems[name].batch_ids(raw)
    return out


def run_points(
    systems: dict[str, System],
    queries: sp.csr_array,
    truth: np.ndarray,
    points: list[tuple[int, float]],
    threads: int,
    repeat: int = 1,
) -> list[dict]:
    """One row per (system, point): recall (single and batch), latencies, all-thread QPS."""
    prepared = {name: s.prepare(queries) for name, s in systems.items()}
    n = queries.shape[0]
    warm_up(systems, prepared, points[0], threads)
    rows = []
    for j, point in enumerate(points):
        active = {
            name: s for name, s in systems.items() if j == 0 or not getattr(s, "point_free", False)
        }
        measured = time_point(active, prepared, point, threads, repeat)
        for name, m in measured.items():
            free = getattr(systems[name], "point_free", False)
            rows.append(
                {
                    "system": name,
                    "query_cut": 0 if free else point[0],  # 0 / 0.0: the knobs do not apply
                    "heap_factor": 0.0 if free else point[1],
                    "recall@10": recall_vs_exact(m["found"], truth),
                    "recall@10_batch": recall_vs_exact(m["batch_found"], truth),
                    "latency_1thread_us": stats_us(m["wall"]),
                    "cpu_1thread_us_mean": float(np.mean(m["cpu"]) * 1e6),
                    "latency_allthreads_us_mean": m["batch_seconds"] / n * 1e6,
                    "qps_allthreads": n / m["batch_seconds"],
                }
            )
    return rows
