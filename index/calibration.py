"""Calibration: the measured recall/cost front of the query settings, and recall targets.

``calibrate_index`` measures, for a grid of (query_cut, heap_factor) settings, Recall@k
against the index's own exact search (``mode="exact"``, equal to scoring every document)
and the single-thread cost, on given queries or on pseudo-queries drawn from the
documents (:mod:`index.pseudo_queries`); it keeps the Pareto-optimal settings (no other
setting is both cheaper and at least as good). A target is met by the cheapest front
setting whose calibrated recall is at least ``target + margin``, with the margin
``max(MIN_MARGIN, MARGIN_SHARE * (1 - target))`` (e.g. 0.925 for 0.90, 0.9625 for 0.95,
0.995 for 0.99): the gap measured between pseudo-queries and real ones, and the sampling
error of a few hundred queries. No setting meeting it means exact search.

Cost: every setting's documents scored, blocks whose summaries were scored and lists
walked are counted exactly; a subset of queries is timed single-threaded (thread CPU
time) per setting, and a non-negative linear model of the time on those counters, fitted
over all settings at once, is the cost: single timings on a busy machine are noisy, the
model averages the noise out across settings. Settings are explored cheapest first (per
query_cut, heap_factor from high to low) and a branch stops where a setting is slower
than exact search by ``SLOWER_THAN_EXACT``: exact search has recall 1 at its cost.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import nnls

from index.kernels.scratch import STAT_DOCS, STAT_LISTS, STAT_SUMMARIES
from index.pseudo_queries import PSEUDO_TERMS, pseudo_queries
from index.validation import as_csr, check_k, check_queries

if TYPE_CHECKING:
    from index.seismic import SeismicIndex

log = logging.getLogger(__name__)

QUERY_CUTS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20)
HEAP_FACTORS = (1.1, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4)
N_QUERIES = 400
N_TIMED = 100
MARGIN_SHARE = 0.25
MIN_MARGIN = 0.005
# A setting measured this much slower than exact search is not explored further (exact
# search dominates it: recall 1 for less), nor are the slower ones beyond it.
SLOWER_THAN_EXACT = 1.25


@dataclass(frozen=True)
class FrontPoint:
    """One measured setting: mean Recall@k (and its standard error) on the calibration
    queries, documents scored per query, modelled and measured single-thread
    microseconds per query."""

    query_cut: int
    heap_factor: float
    recall: float
    recall_se: float
    docs_scored: float
    cost_us: float
    measured_us: float


@dataclass(frozen=True)
class Calibration:
    """The recall/cost front of an index (stored in its manifest).

    ``front``: Pareto-optimal settings, cost and recall ascending, all cheaper than
    ``mode="exact"`` (exact search is the front's last point: recall 1 at ``exact_us``,
    its single-thread cost on the same queries); ``points``: every setting measured;
    ``queries``: ``"pseudo"`` or ``"given"``.
    """

    k: int
    queries: str
    n_queries: int
    front: tuple[FrontPoint, ...]
    points: tuple[FrontPoint, ...] = ()
    exact_us: float = 0.0
    seconds: float = 0.0
    seed: int = 0
    margin_share: float = MARGIN_SHARE
    min_margin: float = MIN_MARGIN
    extra: dict[str, Any] = field(default_factory=dict)

    def required(self, target: float) -> float:
        """The calibrated recall a setting needs to be picked for ``target``."""
        return target + max(self.min_margin, self.margin_share * (1.0 - target))

    def pick(self, target: float) -> FrontPoint | None:
        """The cheapest front setting meeting ``target`` with the margin; None when none
        does (exact search, then the cheapest way to meet it)."""
        need = self.required(target)
        for point in self.front:
            if point.recall >= need:
                return point
        return None

    def step(self, point: FrontPoint, direction: int) -> FrontPoint | None:
        """The next front setting after ``point``: slower and better for ``direction`` >
        0, faster for < 0; None past either end (past the slow end: exact search)."""
        keys = [(p.query_cut, p.heap_factor) for p in self.front]
        i = keys.index((point.query_cut, point.heap_factor)) + (1 if direction > 0 else -1)
        return self.front[i] if 0 <= i < len(self.front) else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the manifest's ``calibration``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`; ``ValueError`` on a malformed record."""
        if not isinstance(data, dict):
            raise ValueError("calibration must be a JSON object")
        try:
            values = dict(data)
            values["front"] = tuple(FrontPoint(**p) for p in data["front"])
            values["points"] = tuple(FrontPoint(**p) for p in data.get("points", ()))
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed calibration: {exc}") from None


def pareto_front(points: list[FrontPoint]) -> tuple[FrontPoint, ...]:
    """The settings no other one beats on both cost (lower) and recall (higher)."""
    front: list[FrontPoint] = []
    for p in sorted(points, key=lambda p: (p.cost_us, -p.recall)):
        if not front or p.recall > front[-1].recall:
            front.append(p)
    return tuple(front)


def recall_per_query(found: np.ndarray, truth: np.ndarray, source: np.ndarray, k: int):
    """Recall@k of each query (float64 (nq,), NaN when the truth is empty): ``found`` and
    ``truth`` int64 (nq, >= k) rows best first (-1 pads), ``source`` int64 (nq,) a row to
    leave out of both (-1: none)."""

    def first_k(rows: np.ndarray) -> np.ndarray:
        valid = (rows >= 0) & (rows != source[:, None])
        return valid & (np.cumsum(valid, axis=1) <= k)

    keep_t, keep_f = first_k(truth), first_k(found)
    same = (truth[:, :, None] == found[:, None, :]) & keep_t[:, :, None] & keep_f[:, None, :]
    n_true = keep_t.sum(axis=1)
    hits = same.any(axis=2).sum(axis=1)
    out = np.full(truth.shape[0], np.nan)
    np.divide(hits, n_true, out=out, where=n_true > 0)
    return out


def time_settings(index: SeismicIndex, queries, k: int, settings: list) -> np.ndarray:
    """Thread CPU microseconds per query of each ``QuerySetting``: one batch each on the
    caller's thread (``queries``: validated :class:`index.validation.CsrArrays`)."""
    from index.kernels.search import CERTIFY_OFF

    allowed = np.empty(0, dtype=np.uint8)
    out = np.zeros(len(settings))
    nq = queries.n_rows
    for i, setting in enumerate(settings):
        start = time.thread_time()
        index._search_arrays(
            queries.indptr, queries.indices, queries.data, k, setting, allowed, CERTIFY_OFF,
            serial=True,
        )  # fmt: skip
        out[i] = (time.thread_time() - start) / max(1, nq) * 1e6
    return out


def _fit_cost(counters: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Non-negative least squares of ``measured`` on ``[counters, 1]``; the model's
    predictions (the measurements themselves when the fit is underdetermined)."""
    design = np.column_stack([counters, np.ones(counters.shape[0])])
    if counters.shape[0] <= design.shape[1]:
        return measured
    scale = np.maximum(design.max(axis=0), 1e-12)
    coef, _ = nnls(design / scale, measured)
    return (design / scale) @ coef


def calibrate_index(
    index: SeismicIndex,
    queries: Any = None,
    k: int = 10,
    n_queries: int = N_QUERIES,
    n_timed: int = N_TIMED,
    seed: int = 0,
    query_cuts: tuple[int, ...] = QUERY_CUTS,
    heap_factors: tuple[float, ...] = HEAP_FACTORS,
    pseudo_terms: int = PSEUDO_TERMS,
    slower_than_exact: float = SLOWER_THAN_EXACT,
) -> Calibration:
    """Measure the recall/cost front of ``index`` (see the module docstring).

    ``queries``: a sparse matrix of real queries (at most ``n_queries`` rows are used, a
    seeded sample), or None for ``n_queries`` pseudo-queries; ``n_timed`` of them are
    timed per setting. ``slower_than_exact``: how much slower than exact search a setting
    may be before its branch of the grid is left (``inf`` measures the whole grid).
    """
    k = check_k(k)
    if n_queries < 1 or n_timed < 1:
        raise ValueError("n_queries and n_timed must be positive")
    start = time.perf_counter()
    with index.uncounted():
        return _calibrate(
            index, queries, k, n_queries, n_timed, seed, query_cuts, heap_factors,
            pseudo_terms, slower_than_exact, start,
        )  # fmt: skip


def _calibrate(
    index: SeismicIndex,
    queries: Any,
    k: int,
    n_queries: int,
    n_timed: int,
    seed: int,
    query_cuts: tuple[int, ...],
    heap_factors: tuple[float, ...],
    pseudo_terms: int,
    slower_than_exact: float,
    start: float,
) -> Calibration:
    from index.kernels.search import MODE_APPROX, MODE_EXACT
    from index.settings import QuerySetting  # imports this module

    if queries is None:
        matrix, source = pseudo_queries(
            index.arrays.forward, index.dim, n_queries, seed=seed, n_terms=pseudo_terms
        )
        kind, depth = "pseudo", k + 1
    else:
        matrix = queries
        rows = as_csr(matrix, name="calibration_queries").n_rows
        if rows > n_queries:
            pick = np.sort(np.random.default_rng(seed).choice(rows, n_queries, replace=False))
            matrix = matrix[pick]
        kind, depth = "given", k
    q = as_csr(matrix, name="calibration_queries")
    check_queries(q, index.dim)
    if kind == "given":
        source = np.full(q.n_rows, -1, dtype=np.int64)
    truth = index.search(matrix, k=depth, mode="exact")[0]
    timed = as_csr(matrix[: min(n_timed, q.n_rows)], name="calibration_queries")
    exact = QuerySetting(MODE_EXACT, 1, 0.0)
    time_settings(index, timed, depth, [exact, QuerySetting(MODE_APPROX, 5, 0.9)])  # warm
    exact_us = float(time_settings(index, timed, depth, [exact, exact]).min())
    settings, recalls, counters, measured = [], [], [], []
    max_len = int(np.diff(q.indptr).max(initial=0))
    for qc in sorted(set(query_cuts)):
        if settings and qc > max_len and settings[-1].query_cut >= max_len:
            break  # every list of every query is walked already
        first = True
        for hf in sorted(set(heap_factors), reverse=True):
            setting = QuerySetting(MODE_APPROX, int(qc), float(hf))
            us = float(time_settings(index, timed, depth, [setting])[0])
            if us > slower_than_exact * exact_us:
                break  # exact search is faster; lower heap factors cost still more
            first = False
            found, _, _, stats = index._search_arrays(
                q.indptr, q.indices, q.data, depth, setting, np.empty(0, dtype=np.uint8), 0,
            )  # fmt: skip
            per_query = recall_per_query(found, truth, source, k)
            settings.append(setting)
            recalls.append(per_query)
            measured.append(us)
            counters.append([stats[STAT_DOCS], stats[STAT_SUMMARIES], stats[STAT_LISTS]])
            judged = per_query[~np.isnan(per_query)]
            if judged.size == 0 or judged.mean() >= 1.0 - 1e-12:
                break  # lower heap factors cost more and cannot do better
        if first:
            break  # even this query_cut's cheapest setting is slower than exact search
    counters = np.asarray(counters, dtype=np.float64).reshape(-1, 3) / q.n_rows
    measured = np.asarray(measured)
    cost = _fit_cost(counters, measured)
    points = []
    for s, r, c, m, n in zip(settings, recalls, cost, measured, counters, strict=True):
        valid = r[~np.isnan(r)]
        se = float(valid.std(ddof=1) / np.sqrt(valid.size)) if valid.size > 1 else 0.0
        mean = float(valid.mean()) if valid.size else 1.0
        points.append(
            FrontPoint(s.query_cut, s.heap_factor, mean, se, float(n[0]), float(c), float(m))
        )
    seconds = time.perf_counter() - start
    log.info("calibration: %d settings on %d %s queries in %.1f s", len(points), q.n_rows, kind,
             seconds)  # fmt: skip
    return Calibration(
        k=k,
        queries=kind,
        n_queries=q.n_rows,
        front=tuple(p for p in pareto_front(points) if p.cost_us < exact_us),
        points=tuple(points),
        exact_us=exact_us,
        seconds=seconds,
        seed=seed,
        extra={"pseudo_terms": pseudo_terms, "n_timed": timed.n_rows},
    )
