"""Start-up warm-up: compile (or load cached) Numba kernels and load the encoders in use,
so that the first request is as fast as the rest. ``/readyz`` turns true when it is done."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import scipy.sparse as sp

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


def warm_up(state: Any) -> None:
    start = time.perf_counter()
    try:
        warm_kernels()
        for name in state.registry.names():
            coll = state.registry.get(name)
            enc = state.encoders.get(coll.config.encoder)
            if enc is not None:
                # A few batch shapes: TorchScript (the CPU query body) settles after ~2 calls.
                for texts in (["warm up"], ["warm up", "a longer warm up query"], ["warm up"] * 4):
                    enc.encode_queries(texts)
                state.encoders.batcher(coll.config.encoder)
                state.encoders.token_map(coll.config.encoder)
            view = coll.view
            for seg in view.segments:
                if seg.index is not None and seg.n_rows:
                    vec = coll.vector_of(seg, 0)
                    if vec.indices.size:
                        seg.index.search_vector(vec.indices, vec.values, k=10)
    except Exception as exc:  # the service still answers; /readyz reports the problem
        log.exception("warm-up failed")
        state.warmup_error = str(exc)[:500]
    state.ready = True
    log.info("warm-up done in %.1fs", time.perf_counter() - start)
