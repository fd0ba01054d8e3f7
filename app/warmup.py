"""Start-up warm-up: compile (or load from Numba's cache) the search kernels and load the
encoders in use, so that the first request is as fast as the rest; ``/readyz`` turns true when
it is done. Each step is logged with its time; a collection whose encoder cannot run here is
reported (``/readyz``) and the warm-up goes on with the others."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.errors import ServiceError

log = logging.getLogger(__name__)


def warm_kernels() -> None:
    """Build a tiny index and search it once (exact and approximate)."""
    from index import SeismicIndex, exact_search

    rng = np.random.default_rng(0)
    docs = sp.random_array((300, 64), density=0.1, format="csr", dtype=np.float32, rng=rng)
    docs.data[:] = np.abs(docs.data) + 0.01
    idx = SeismicIndex.build(docs, n_postings=50)
    row = docs[[0]]
    idx.search(row, k=5)
    idx.search_vector(row.indices, row.data, k=5, allowed=np.ones(300, bool))
    exact_search(docs, row, k=5)


def warm_collection(state: Any, name: str) -> None:
    """Load the collection's encoder (a few query shapes) and search each indexed segment."""
    coll = state.registry.get(name)
    enc = state.encoders.get(coll.config.encoder)
    if enc is not None:
        # A few batch shapes: TorchScript (the CPU query body) settles after ~2 calls.
        for texts in (["warm up"], ["warm up", "a longer warm up query"], ["warm up"] * 4):
            enc.encode_queries(texts)
        state.encoders.batcher(coll.config.encoder)
        state.encoders.token_map(coll.config.encoder)
    for seg in coll.view.segments:
        if seg.index is not None and seg.n_rows:
            vec = coll.vector_of(seg, 0)
            if vec.indices.size:
                seg.index.search_vector(vec.indices, vec.values, k=10)


def warm_up(state: Any) -> None:
    start = time.perf_counter()
    names = state.registry.names()
    log.info("warm-up: search kernels, then %d collection(s)", len(names))
    try:
        warm_kernels()
        log.info("warm-up: search kernels ready in %.1fs", time.perf_counter() - start)
    except Exception as exc:  # the service still answers; /readyz reports the problem
        log.exception("warm-up of the search kernels failed")
        state.warmup_error = str(exc)[:500]
    for i, name in enumerate(names, start=1):
        step = time.perf_counter()
        try:
            warm_collection(state, name)
        except ServiceError as exc:  # e.g. its encoder cannot run here: the others go on
            log.warning("warm-up: collection %s unavailable: %s", name, exc.message)
            continue
        except Exception:
            log.exception("warm-up of collection %s failed", name)
            continue
        log.info(
            "warm-up: collection %s ready (%d/%d, %.1fs)",
            name,
            i,
            len(names),
            time.perf_counter() - step,
        )
    state.ready = True
    log.info("warm-up done in %.1fs", time.perf_counter() - start)
