"""Samples of served searches, re-run exactly off the request path for live recall.

A search served at its collection's own setting with ``k`` = 10 (what calibrations measure;
a deeper search finds more of its top 10) is offered with probability ``sample_rate``: a
non-blocking put on a bounded queue, dropped (and counted) when the queue is full, so a
request never waits for it. One background thread takes each sample, runs the same query
exactly (the index's ``mode="exact"`` on every segment) on the *same view* the request saw
(later writes cannot look like misses) and hands both answers to the collection's
:class:`app.services.recall.CollectionRecall`.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.services.recall import RECALL_K, CollectionRecall, RecallOptions
from app.storage.fanout import FanoutResult, View, search_view
from app.storage.filters import MetadataFilter
from app.storage.plan import EXACT, SearchPlan
from app.storage.vectors import SparseVector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """One served search to re-run exactly: on ``view``, as the request saw it."""

    state: CollectionRecall
    generation: int
    view: View
    query: SparseVector
    k: int
    flt: MetadataFilter | None
    served: tuple[str, ...]


class RecallMonitor:
    """Live recall of every collection: the sampling, the queue and the background thread
    (started and stopped with the app's lifespan)."""

    def __init__(self, options: RecallOptions) -> None:
        if not 0.0 <= options.sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in [0, 1], got {options.sample_rate!r}")
        self.options = options
        self._states: dict[str, CollectionRecall] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[Sample] = queue.Queue(maxsize=max(1, options.queue_size))
        self._random = random.Random(options.seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counts_lock = threading.Lock()
        self.offered = 0
        self.dropped = 0
        self.evaluated = 0
        self.failed = 0

    def state(self, name: str, created_at: float, target: float | None) -> CollectionRecall:
        """The live recall of a collection, new when it was re-created or its target
        changed."""
        with self._lock:
            state = self._states.get(name)
            if state is None or (state.created_at, state.target) != (created_at, target):
                state = CollectionRecall(name, created_at, target, self.options)
                self._states[name] = state
            return state

    def forget(self, name: str) -> None:
        with self._lock:
            self._states.pop(name, None)

    def states(self) -> dict[str, CollectionRecall]:
        with self._lock:
            return dict(self._states)

    # -------------------------------------------------------------- sampling
    def wants_sample(self) -> bool:
        """Whether to re-run the search just served (one random draw, no lock)."""
        rate = self.options.sample_rate
        return rate > 0.0 and (rate >= 1.0 or self._random.random() < rate)

    def offer_answers(
        self,
        live: CollectionRecall,
        generation: int | None,
        found: FanoutResult,
        queries: Sequence[SparseVector],
        k: int,
        flt: MetadataFilter | None,
    ) -> None:
        """Offer the answers of one search call to the sampler, each with probability
        ``sample_rate``; only searches with ``k`` = 10 run at a setting the collection can
        learn about (``generation`` not None)."""
        if generation is None or k != RECALL_K:
            return
        for query, hits in zip(queries, found.hits, strict=True):
            if self.wants_sample():
                served = tuple(h.doc_id for h in hits)
                self.offer(Sample(live, generation, found.view, query, k, flt, served))

    def offer(self, sample: Sample) -> bool:
        """Queue a sample without ever waiting; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(sample)
            queued = True
        except queue.Full:
            queued = False
        with self._counts_lock:
            self.offered += 1
            self.dropped += not queued
        return queued

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    # ---------------------------------------------------------- the thread
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="lsr-recall", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sample = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self.evaluate(sample)
                self.evaluated += 1
            except Exception:  # a bad sample must not end the thread
                self.failed += 1
                log.exception("recall: re-running a sample of %s failed", sample.state.name)

    def evaluate(self, sample: Sample) -> None:
        """Re-run one sample exactly on its view and add it to its collection's estimate."""
        exact = search_view(
            sample.view, [sample.query], sample.k, SearchPlan(mode=EXACT), sample.flt
        )
        truth = [h.doc_id for h in exact.hits[0]]
        sample.state.observe(sample.generation, list(sample.served), truth)

    def snapshot(self) -> dict[str, Any]:
        """The sampler's own counters."""
        return {
            "sample_rate": self.options.sample_rate,
            "offered": self.offered,
            "dropped": self.dropped,
            "pending": self.pending,
            "evaluated": self.evaluated,
            "failed": self.failed,
        }
