"""Live recall: a running Recall@k estimate of served answers, and a controller that moves
a collection along its calibrated front when the estimate leaves the target.

The service re-runs a sample of real queries exactly (``mode="exact"``, off the request
path) and feeds both answers here. Per query, recall is ``|served & exact| / |exact|``;
the estimate is the mean over the last ``window`` sampled queries (so that drift, e.g.
many documents added, shows within a window), with a normal-approximation confidence
interval whose per-query variance is floored by the binomial ``p (1 - p) / k`` (a window
of identical recalls says little). Pure Python and NumPy; thread-safe.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from index.calibration import Calibration, FrontPoint


@dataclass(frozen=True)
class RecallEstimate:
    """Mean Recall@k over ``n`` sampled queries and its confidence interval."""

    recall: float
    low: float
    high: float
    n: int
    k: int
    confidence: float


def query_recall(served: Iterable[Any], exact: Iterable[Any], k: int) -> float | None:
    """Recall@k of one served answer against the exact one (ids of any hashable kind;
    None and negative integers are padding); None when the exact answer is empty."""

    def ids(rows: Iterable[Any]) -> list:
        return [r for r in rows if r is not None and not (isinstance(r, int) and r < 0)]

    truth = ids(int(r) if hasattr(r, "__index__") else r for r in exact)[:k]
    if not truth:
        return None
    got = set(ids(int(r) if hasattr(r, "__index__") else r for r in served)[:k])
    return sum(1 for t in truth if t in got) / len(truth)


class RecallEstimator:
    """Running Recall@``k`` over the last ``window`` sampled queries."""

    def __init__(self, k: int = 10, window: int = 2000, confidence: float = 0.95) -> None:
        if k < 1 or window < 1 or not 0.0 < confidence < 1.0:
            raise ValueError("need k >= 1, window >= 1 and 0 < confidence < 1")
        self.k = int(k)
        self.confidence = float(confidence)
        self._z = NormalDist().inv_cdf(0.5 + confidence / 2)
        self._values: deque[float] = deque(maxlen=int(window))
        self._lock = threading.Lock()

    def add(self, served: Sequence[Any], exact: Sequence[Any]) -> float | None:
        """Add one query's served and exact top-k ids; returns its recall (None, and
        nothing added, when the exact answer is empty)."""
        value = query_recall(served, exact, self.k)
        if value is not None:
            self.add_recall(value)
        return value

    def add_recall(self, value: float) -> None:
        """Add one query's recall (in [0, 1])."""
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"a recall lies in [0, 1], got {value!r}")
        with self._lock:
            self._values.append(float(value))

    def reset(self) -> None:
        """Forget every sample (after a move to another setting)."""
        with self._lock:
            self._values.clear()

    def estimate(self) -> RecallEstimate:
        """The current estimate; with no sample, recall NaN and the interval [0, 1]."""
        with self._lock:
            values = list(self._values)
        n = len(values)
        if n == 0:
            return RecallEstimate(math.nan, 0.0, 1.0, 0, self.k, self.confidence)
        mean = math.fsum(values) / n
        var = math.fsum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
        p = min(max(mean, 0.5 / (n * self.k)), 1.0 - 0.5 / (n * self.k))
        half = self._z * math.sqrt(max(var, p * (1.0 - p) / self.k) / n)
        return RecallEstimate(
            mean, max(0.0, mean - half), min(1.0, mean + half), n, self.k, self.confidence
        )


@dataclass(frozen=True)
class Move:
    """One step along the front: from ``old`` to ``new`` (None: exact search), why, and
    the estimate that caused it."""

    old: FrontPoint | None
    new: FrontPoint | None
    reason: str
    estimate: RecallEstimate


class RecallController:
    """Keeps a collection on the cheapest front setting whose live recall meets ``target``.

    Starts at ``start`` (default ``calibration.pick(target)``; None is exact search). Once
    ``min_samples`` queries are in and the interval's upper end is below the target, it
    moves one step slower (past the front's end: exact search); when its lower end is above
    ``target + raise_margin``, one step faster, but never back into a setting it left for
    being below target within the last ``cooldown`` samples (default: five windows), so
    that it does not swing between a setting that fails and the next one. Each move resets
    the estimate (it belonged to the old setting) and is kept in ``moves`` for the service
    to log. ``estimator``: share one (e.g. a collection's, across re-calibrations).
    """

    def __init__(
        self,
        calibration: Calibration,
        target: float,
        window: int = 2000,
        min_samples: int = 200,
        confidence: float = 0.95,
        raise_margin: float | None = None,
        start: FrontPoint | None | str = "pick",
        estimator: RecallEstimator | None = None,
        cooldown: int | None = None,
    ) -> None:
        self.calibration = calibration
        self.target = float(target)
        self.min_samples = int(min_samples)
        self.raise_margin = (
            max(0.01, 0.5 * (1.0 - target)) if raise_margin is None else float(raise_margin)
        )
        self.estimator = estimator or RecallEstimator(calibration.k, window, confidence)
        self.current: FrontPoint | None = (
            calibration.pick(self.target) if isinstance(start, str) else start
        )
        self.cooldown = 5 * int(window) if cooldown is None else int(cooldown)
        self.moves: list[Move] = []
        self._seen = 0
        self._failed: dict[tuple[int, float] | None, int] = {}
        self._lock = threading.Lock()

    def search_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``SeismicIndex.search`` / ``search_vector`` for now."""
        point = self.current
        if point is None:
            return {"mode": "exact"}
        return {"query_cut": point.query_cut, "heap_factor": point.heap_factor}

    def observe(self, served: Sequence[Any], exact: Sequence[Any]) -> Move | None:
        """Add one sampled query's answers; returns the move it caused, if any."""
        self.estimator.add(served, exact)
        est = self.estimator.estimate()
        with self._lock:
            self._seen += 1
            if est.n < self.min_samples:
                return None
            old = self.current
            if est.high < self.target:
                if old is None:
                    return None  # exact search already
                new, reason = self.calibration.step(old, +1), "below target"
                self._failed[_key(old)] = self._seen
            elif est.low >= self.target + self.raise_margin:
                if old is None:
                    new = self.calibration.front[-1] if self.calibration.front else None
                else:
                    new = self.calibration.step(old, -1)
                if new is None or new == old:
                    return None
                failed_at = self._failed.get(_key(new))
                if failed_at is not None and self._seen - failed_at < self.cooldown:
                    return None  # it fell below target there not long ago
                reason = "above target"
            else:
                return None
            move = Move(old, new, reason, est)
            self.current = new
            self.moves.append(move)
        self.estimator.reset()
        return move


def _key(point: FrontPoint | None) -> tuple[int, float] | None:
    return None if point is None else (point.query_cut, point.heap_factor)
