"""Runs the search kernels for an index: the caller's thread with pooled scratch for small
batches, the ``prange`` batch kernel for large ones."""

from __future__ import annotations

import threading
from typing import Any

import numba
import numpy as np

from index.kernels.search import (
    N_STATS,
    SearchScratch,
    make_scratch,
    search_batch,
    search_serial,
)
from index.layout import IndexArrays
from index.settings import QuerySetting

# Batches this small run serially on the caller's thread with pooled scratch.
SERIAL_BATCH = 4
# The default ("workqueue") Numba threading layer is not safe for parallel kernels entered
# from several Python threads at once; this lock serialises only those calls.
_PARALLEL_LOCK = threading.Lock()


class KernelRunner:
    """Per-index search state: a pool of scratch buffers and the compiled entry points of
    the serial kernel. Thread-safe."""

    def __init__(self, arrays: IndexArrays, n_docs: int, dim: int) -> None:
        self.n_docs = n_docs
        self.dim = dim
        self.max_blocks = int(np.diff(arrays.postings.list_blocks).max(initial=0)) or 1
        size = int(arrays.block_max.range_size[0])
        self.n_ranges = (n_docs + size - 1) // size if size else 0
        self._pool: list[SearchScratch] = []
        self._pool_lock = threading.Lock()
        self._entries: dict[tuple, Any] = {}

    def run(
        self,
        arrays: IndexArrays,
        indptr: np.ndarray,
        indices: np.ndarray,
        data: np.ndarray,
        k: int,
        setting: QuerySetting,
        allowed: np.ndarray,
        certify: int,
        serial: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Run ``setting`` for the queries (CSR arrays, validated); returns ``(rows, scores,
        cert float64 (nq, 3), stats int64 (N_STATS,))``: this call's counters. ``serial``
        keeps a batch on the caller's thread (timing)."""
        nq = indptr.shape[0] - 1
        qc, hf, mode = setting.query_cut, setting.heap_factor, setting.mode
        global_order = setting.global_order
        max_nnz = int(indptr[1] - indptr[0]) if nq == 1 else int(np.diff(indptr).max(initial=0))
        max_cand = self.max_blocks * (min(qc, max_nnz) if global_order else 1)
        out_rows = np.empty((nq, k), dtype=np.int64)
        out_scores = np.empty((nq, k), dtype=np.float32)
        cert = np.zeros((nq, 3), dtype=np.float64)
        lists, summaries, forward, block_max = arrays
        if serial or nq <= SERIAL_BATCH or numba.get_num_threads() == 1:
            scratch = self._take_scratch(max_cand)
            try:
                self._serial(
                    (
                        indptr, indices, data, qc, hf, global_order, mode, certify, lists,
                        summaries, forward, block_max, allowed, scratch, out_rows,
                        out_scores, cert,
                    )
                )  # fmt: skip
                stats = scratch.stats.copy()
            finally:
                # Under the GIL, and too small for NumPy to release it: no lock needed.
                scratch.stats[:] = 0
                self._give_scratch(scratch)
        else:
            n_chunks = max(1, min(nq, numba.get_num_threads()))
            chunk_stats = np.zeros((n_chunks, N_STATS), dtype=np.int64)
            with _PARALLEL_LOCK:
                search_batch(
                    indptr, indices, data, qc, hf, global_order, mode, certify, lists,
                    summaries, forward, block_max, allowed, self.dim, self.max_blocks,
                    max(1, max_cand), n_chunks, out_rows, out_scores, cert, chunk_stats,
                )  # fmt: skip
            stats = chunk_stats.sum(axis=0)
        return out_rows, out_scores, cert, stats

    def _serial(self, args: tuple) -> None:
        """Call ``search_serial`` through its compiled entry point.

        Numba's dispatcher types every argument on every call (here ~35 arrays inside
        five records: 10-15 us, as much as a fast query). The argument types are fixed
        per index except the writeability of the caller's arrays, so the entry point
        compiled for them is looked up once per combination and called directly.
        """
        key = (args[1].flags.writeable, args[2].flags.writeable, args[12].flags.writeable)
        entry = self._entries.get(key)
        if entry is not None:
            entry(*args)
            return
        search_serial(*args)
        sig = tuple(search_serial.typeof_pyval(a) for a in args)
        compiled = search_serial.overloads.get(sig)
        if compiled is not None:
            self._entries[key] = compiled.entry_point

    def _take_scratch(self, max_cand: int) -> SearchScratch:
        with self._pool_lock:
            scratch = self._pool.pop() if self._pool else None
        if scratch is None or scratch.cand_scores.shape[0] < max_cand:
            scratch = make_scratch(
                self.dim, self.n_docs, self.max_blocks, max(self.max_blocks, max_cand),
                self.n_ranges,
            )  # fmt: skip
        return scratch

    def _give_scratch(self, scratch: SearchScratch) -> None:
        with self._pool_lock:
            self._pool.append(scratch)
