"""Live recall of a collection: its running Recall@10 estimate, and the controller that keeps
its recall target (the samples come from :mod:`app.services.sampler`).

Each sample is one served search re-run exactly; its Recall@10 goes into the collection's
:class:`index.RecallEstimator` (mean of the last ``window`` samples, with a confidence
interval).

With a ``target_recall`` the collection's indexed segments all run one setting, a point of
one calibrated front: that of its largest calibrated segment (the *reference*). An
:class:`index.RecallController` starts at the front's cheapest setting meeting the target with
the calibration's margin and moves one step slower when the interval's upper end falls
below the target, one step faster when its lower end is comfortably above (each move is
logged and resets the estimate). When another segment becomes the largest calibrated one
(a seal or merge), the controller re-bases on that segment's front, keeping what the live
estimate taught it: the new setting is the cheapest one whose calibrated recall exceeds the
new front's pick by as much as the old setting exceeded the old pick. With no calibrated
segment, a target is met by exact search.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from app.storage.fanout import View
from app.storage.plan import EXACT, SearchPlan

log = logging.getLogger(__name__)
# Calibrations measure Recall@10 (index.calibration's default k); only searches with this k
# are sampled, since a deeper search finds more of its top 10.
RECALL_K = 10
_HISTORY = 20  # moves kept for the stats route


@dataclass(frozen=True)
class RecallOptions:
    """How live recall is measured: the share of eligible searches re-run exactly
    (``sample_rate``), the queue between requests and the background thread, the estimate's
    window and confidence, the samples a controller waits for before it moves, and the seed
    of the sampling (None: random)."""

    sample_rate: float = 0.01
    queue_size: int = 256
    window: int = 2000
    min_samples: int = 200
    confidence: float = 0.95
    seed: int | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> RecallOptions:
        """The options an :class:`app.settings.Settings` sets (``LSR_RECALL_*``)."""
        return cls(
            sample_rate=settings.recall_sample_rate,
            queue_size=settings.recall_queue,
            window=settings.recall_window,
            min_samples=settings.recall_min_samples,
            confidence=settings.recall_confidence,
            seed=settings.recall_seed,
        )


def _recall_of(point: Any) -> float:
    """A front point's calibrated recall; exact search (None) has recall 1."""
    return 1.0 if point is None else float(point.recall)


def _describe(point: Any) -> dict[str, Any]:
    if point is None:
        return {"mode": EXACT}
    return {
        "mode": "approx",
        "query_cut": point.query_cut,
        "heap_factor": point.heap_factor,
        "calibrated_recall": round(point.recall, 4),
    }


def _label(point: Any) -> str:
    """A front point for the log: ``query_cut=3 heap_factor=0.9 (calibrated 0.913)``."""
    if point is None:
        return "exact"
    return (
        f"query_cut={point.query_cut} heap_factor={point.heap_factor:g} "
        f"(calibrated {point.recall:.3f})"
    )


def _largest_calibrated(view: View) -> tuple[int, Any] | None:
    """``(segment id, calibration)`` of the view's largest segment with a calibration."""
    best = None
    for seg, n_rows in zip(view.segments, view.n_rows, strict=True):
        cal = getattr(seg.index, "calibration", None)
        if cal is not None and (best is None or n_rows > best[0]):
            best = (n_rows, seg.seg_id, cal)
    return None if best is None else (best[1], best[2])


class CollectionRecall:
    """One collection's live recall: its estimate, its controller (with a target), and how
    many answers it served and how many of them were certified exact. Thread-safe;
    ``observe`` runs on the monitor's thread."""

    def __init__(
        self, name: str, created_at: float, target: float | None, options: RecallOptions
    ) -> None:
        from index import RecallEstimator

        self.name = name
        self.created_at = created_at
        self.target = target
        self.options = options
        self.estimator = RecallEstimator(RECALL_K, options.window, options.confidence)
        self.controller: Any = None  # index.RecallController once a front is known
        self.reference: int | None = None
        self.generation = 0  # bumped whenever the setting changes: older samples are stale
        self.moves_total = 0
        self.rebases = 0
        self.history: deque[dict[str, Any]] = deque(maxlen=_HISTORY)
        self.stale = 0
        self.searches = 0
        self.certified = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------ the setting
    def own_plan(
        self, view: View, defaults: dict[str, Any], certify: bool = False
    ) -> tuple[SearchPlan, int | None]:
        """The plan the collection's own searches run now: its controller's setting with a
        target (exact search while no segment is calibrated), else its ``defaults`` knobs;
        and the generation a sample of it belongs to (None: nothing to learn from one)."""
        if self.target is None:
            return SearchPlan(knobs=dict(defaults), certify=certify), self.generation
        with self._lock:
            self._follow_reference(view)
            if self.controller is None:
                return SearchPlan(mode=EXACT, certify=certify), None
            kwargs, generation = self.controller.search_kwargs(), self.generation
        if kwargs.get("mode") == EXACT:  # past the front's end; samples tell when to go back
            return SearchPlan(mode=EXACT, certify=certify), generation
        return SearchPlan(knobs=kwargs, certify=certify), generation

    def _follow_reference(self, view: View) -> None:
        """Start the controller on the largest calibrated segment's front, or re-base it
        there when that segment changed (caller holds the lock)."""
        from index import RecallController

        found = _largest_calibrated(view)
        if found is None or found[0] == self.reference:
            return
        seg_id, cal = found
        old = self.controller
        start: Any = "pick"
        if old is not None:
            pick = old.calibration.pick(self.target)
            shift = _recall_of(old.current) - _recall_of(pick)
            start = _carried(cal, self.target, shift)
        new = RecallController(
            cal,
            self.target,
            window=self.options.window,
            min_samples=self.options.min_samples,
            confidence=self.options.confidence,
            start=start,
            estimator=self.estimator,  # one estimate per collection, reset below
        )
        if old is not None:
            self.rebases += 1
            log.info(
                "recall: collection %s re-based on segment %d's front (was %s): %s -> %s "
                "(calibrated recall shift %+.3f)",
                self.name,
                seg_id,
                self.reference,
                _label(old.current),
                _label(new.current),
                shift,
            )
        self.controller, self.reference = new, seg_id
        self.estimator.reset()
        self.generation += 1

    # ------------------------------------------------------------ the samples
    def observe(self, generation: int, served: list[str], exact: list[str]) -> None:
        """Add one sample's served and exact ids (a sample of an older setting is dropped)."""
        with self._lock:
            if generation != self.generation:
                self.stale += 1
                return
            controller = self.controller
        if controller is None:
            self.estimator.add(served, exact)
            return
        move = controller.observe(served, exact)
        if move is None:
            return
        est = move.estimate
        with self._lock:
            if controller is not self.controller:
                return  # re-based meanwhile: that controller no longer sets anything
            self.generation += 1
            self.moves_total += 1
            self.history.append(
                {
                    "from": _describe(move.old),
                    "to": _describe(move.new),
                    "reason": move.reason,
                    "recall": est.recall,
                    "low": est.low,
                    "high": est.high,
                    "samples": est.n,
                }
            )
        log.info(
            "recall: collection %s moved %s -> %s (%s): Recall@%d %.4f [%.4f, %.4f] over "
            "%d samples, target %.3f",
            self.name,
            _label(move.old),
            _label(move.new),
            move.reason,
            est.k,
            est.recall,
            est.low,
            est.high,
            est.n,
            self.target,
        )

    def count_answers(self, answers: int, certified: int) -> None:
        """Count search answers, and those certified exact."""
        with self._lock:
            self.searches += answers
            self.certified += certified

    def snapshot(self) -> dict[str, Any]:
        """The estimate, its interval, the target and the setting, JSON-ready."""
        est = self.estimator.estimate()
        with self._lock:
            controller = self.controller
            out: dict[str, Any] = {
                "k": est.k,
                "target": self.target,
                "estimate": None if math.isnan(est.recall) else est.recall,
                "ci_low": est.low,
                "ci_high": est.high,
                "confidence": est.confidence,
                "samples": est.n,
                "stale_samples": self.stale,
                "moves": self.moves_total,
                "rebases": self.rebases,
                "recent_moves": list(self.history),
                "searches": self.searches,
                "certified": self.certified,
            }
        if self.target is None:
            out["setting"] = {"mode": "approx", "from": "query_params"}
        elif controller is None:
            out["setting"] = {"mode": EXACT, "from": "no calibrated segment"}
        else:
            pick = controller.calibration.pick(self.target)
            out["setting"] = {
                **_describe(controller.current),
                "from": "controller",
                "reference_segment": self.reference,
                "calibrated_pick": _describe(pick),
                "front": [_describe(p) for p in controller.calibration.front],
            }
        return out


def _carried(cal: Any, target: float, shift: float) -> Any:
    """The cheapest point of ``cal``'s front whose calibrated recall is at least its pick's
    plus ``shift`` (None: exact search)."""
    need = _recall_of(cal.pick(target)) + shift
    for point in cal.front:
        if point.recall >= need - 1e-12:
            return point
    return None
