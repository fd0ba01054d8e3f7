"""``SeismicIndex``: owns the arrays, parameters and files of a Seismic-style index and
calls the Numba kernels for build and search."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from index.block_max import block_max_of
from index.builder import BuildParams, build_arrays
from index.calibration import Calibration, calibrate_index
from index.checks import check_structure
from index.explain import SearchExplanation, explain_query
from index.kernels.search import CERTIFY_CHECK, CERTIFY_OFF, MODE_EXACT, N_STATS
from index.layout import ARRAY_NAMES, LEGACY_NAMES, OPTIONAL_NAMES, IndexArrays
from index.params import QueryParams
from index.runner import SERIAL_BATCH, KernelRunner
from index.settings import QuerySetting, resolve_setting
from index.sources import CsrSource, MatrixSource, ParquetSource
from index.storage import IndexFormatError, load_arrays, save_arrays, update_manifest
from index.validation import as_csr, as_sparse_vector, check_k, check_queries


@dataclass
class SeismicIndex:
    """A Seismic blocked inverted index over ``n_docs`` sparse vectors of dimension ``dim``.

    Build with :meth:`build`, query with :meth:`search`, persist with :meth:`save` /
    :meth:`load`. Rows (``int``) are the input matrix's row numbers.
    """

    arrays: IndexArrays
    params: BuildParams
    n_docs: int
    dim: int
    build_seconds: float = 0.0
    calibration: Calibration | None = None

    def __post_init__(self) -> None:
        self._runner = KernelRunner(self.arrays, self.n_docs, self.dim)
        # Searches add their counters here (see index.kernels.scratch.STAT_*): documents
        # scored, blocks visited, blocks whose summaries were scored, lists walked,
        # block-max pairs read, ranges scored or checked, documents verified.
        self.stats = np.zeros(N_STATS, dtype=np.int64)
        self._local = threading.local()

    @property
    def _max_blocks(self) -> int:
        return self._runner.max_blocks

    @property
    def can_certify(self) -> bool:
        """Whether the index holds block-max bounds (built or saved by format 3): without
        them ``certify`` answers all False and ``mode="exact"`` scores every document."""
        return self.arrays.can_certify

    # ------------------------------------------------------------------ build
    @classmethod
    def build(
        cls,
        docs_csr: Any,
        calibrate: bool = False,
        calibration_queries: Any = None,
        **params: Any,
    ) -> SeismicIndex:
        """Index the rows of ``docs_csr`` (scipy sparse, non-negative finite weights).

        ``params`` are :class:`BuildParams` fields: ``n_postings``, ``max_fraction``,
        ``centroid_fraction``, ``min_cluster_size``, ``summary_energy``, ``doc_cut``,
        ``seed``. With ``calibrate`` the recall/cost front of the query settings is
        measured (:meth:`calibrate`) on ``calibration_queries`` (a sparse matrix), or on
        pseudo-queries drawn from the documents when None.
        """
        return cls.build_from_source(
            MatrixSource(docs_csr), calibrate=calibrate,
            calibration_queries=calibration_queries, **params,
        )  # fmt: skip

    @classmethod
    def build_from_shards(
        cls,
        paths: Sequence[str | os.PathLike],
        dim: int,
        out: str | os.PathLike | None = None,
        **params: Any,
    ) -> SeismicIndex:
        """Index the rows of Parquet shards (``lsr index``'s: list columns ``indices``
        int32 and ``values`` float32; rows in file order become rows 0..n-1), reading
        them twice, chunk by chunk, never all at once.

        With ``out`` the index is written there as it is built (the forward index part by
        part) and returned memory-mapped; without, it is returned in memory. The result
        equals ``build`` of the same rows, bit for bit. ``calibrate`` and
        ``calibration_queries`` as in :meth:`build`.
        """
        return cls.build_from_source(ParquetSource(paths, dim), out=out, **params)

    @classmethod
    def build_from_source(
        cls,
        source: CsrSource,
        out: str | os.PathLike | None = None,
        calibrate: bool = False,
        calibration_queries: Any = None,
        **params: Any,
    ) -> SeismicIndex:
        """Index the rows of any :class:`index.sources.CsrSource` (see ``build_from_shards``
        for ``out``, ``build`` for the rest); e.g. ``BigAnnSource("base.csr")``."""
        unknown = set(params) - set(BuildParams.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown build parameters: {sorted(unknown)}")
        if calibration_queries is not None and not calibrate:
            raise ValueError("calibration_queries given without calibrate=True")
        bp = BuildParams(**params)
        start = time.perf_counter()
        arrays = build_arrays(source, bp, stream=out is not None)
        n_docs = int(arrays.forward.doc_rows.shape[0])
        if out is None:
            index = cls(arrays, bp, n_docs, source.n_cols, time.perf_counter() - start)
        else:
            _save(out, arrays, bp, n_docs, source.n_cols, None)
            index = cls.load(out, verify=False)
            index.build_seconds = time.perf_counter() - start
        if calibrate:
            index.calibrate(calibration_queries)
            if out is not None:
                update_manifest(out, {"calibration": index.calibration.to_dict()})
        return index

    def calibrate(self, queries: Any = None, k: int = 10, **options: Any) -> Calibration:
        """Measure recall (against this index's exact search) and single-thread cost of a
        grid of (query_cut, heap_factor) settings on ``queries`` (sparse matrix) or on
        pseudo-queries drawn from the documents, keep the Pareto-optimal settings, and
        store them in ``self.calibration`` (saved in the manifest). ``options``: see
        :func:`index.calibration.calibrate_index`."""
        self.calibration = calibrate_index(self, queries, k=k, **options)
        return self.calibration

    def with_block_max(self) -> SeismicIndex:
        """This index with a block-max index computed from its forward index: what an
        index saved before format 3 needs to certify and for fast ``mode="exact"``
        (``SeismicIndex.load(old).with_block_max().save(new)`` upgrades it)."""
        if self.can_certify:
            return self
        arrays = self.arrays._replace(block_max=block_max_of(self.arrays.forward, self.dim))
        return SeismicIndex(
            arrays, self.params, self.n_docs, self.dim, calibration=self.calibration
        )

    # ----------------------------------------------------------------- search
    def search(
        self,
        queries_csr: Any,
        k: int = 10,
        query_cut: int | None = None,
        heap_factor: float | None = None,
        allowed: np.ndarray | None = None,
        global_order: bool | None = None,
        params: QueryParams | None = None,
        *,
        recall: float | None = None,
        certify: bool = False,
        mode: str = "approx",
    ) -> tuple[np.ndarray, ...]:
        """Top-``k`` rows for each query row by inner product.

        ``query_cut`` (default 10): heaviest query terms whose lists are walked;
        ``heap_factor`` (default 0.8): a block is skipped when its summary score is below
        ``heap_factor * heap_min`` (Seismic's rule; smaller = more blocks visited, 0
        visits every block); ``global_order``: walk the blocks of all cut lists in one
        best-first order instead of Seismic's order; ``allowed``: optional bool (n_docs,)
        mask, rows where False are never returned. ``recall``: instead of the two knobs,
        a Recall@k target: the cheapest calibrated setting meeting it with the
        calibration's margin (exact search when none does; needs :meth:`calibrate`).
        ``mode="exact"``: the exact top-k (equal to scoring every document, bit for bit),
        with safe early termination on block-max bounds. ``certify``: also return a bool
        per query, True only when the block-max bounds prove that no document the search
        did not score could enter its top k (always True in exact mode; always False
        for an index without bounds, see :attr:`can_certify`).

        Returns ``(ids int64, scores float32)`` of shape (n_queries, k), best first, ties
        to the lower row, padded with id -1 and score 0.0; with ``certify``, also
        ``certified`` bool (n_queries,).
        """
        k = check_k(k)
        setting = self.query_setting(query_cut, heap_factor, global_order, params, recall, mode)
        queries = as_csr(queries_csr, name="queries")
        check_queries(queries, self.dim)
        rows, scores, cert, _ = self._search_arrays(
            queries.indptr, queries.indices, queries.data, k, setting, self._allowed(allowed),
            CERTIFY_CHECK if certify else CERTIFY_OFF,
        )  # fmt: skip
        return (rows, scores, self._certified(cert, setting)) if certify else (rows, scores)

    def search_vector(
        self,
        indices: np.ndarray,
        values: np.ndarray,
        k: int = 10,
        query_cut: int | None = None,
        heap_factor: float | None = None,
        allowed: np.ndarray | None = None,
        global_order: bool | None = None,
        params: QueryParams | None = None,
        *,
        recall: float | None = None,
        certify: bool = False,
        mode: str = "approx",
    ) -> tuple[Any, ...]:
        """One query given as term ids and weights (low overhead, for a service).

        Returns ``(ids int64 (k,), scores float32 (k,))``, and ``certified`` (bool) with
        ``certify``. Same rules as :meth:`search`; duplicate terms are summed.
        """
        k = check_k(k)
        setting = self.query_setting(query_cut, heap_factor, global_order, params, recall, mode)
        idx, val = as_sparse_vector(indices, values, self.dim)
        indptr = np.array([0, idx.shape[0]], dtype=np.int64)
        rows, scores, cert, _ = self._search_arrays(
            indptr, idx, val, k, setting, self._allowed(allowed),
            CERTIFY_CHECK if certify else CERTIFY_OFF,
        )  # fmt: skip
        if certify:
            return rows[0], scores[0], bool(self._certified(cert, setting)[0])
        return rows[0], scores[0]

    def explain(
        self,
        indices: np.ndarray,
        values: np.ndarray,
        k: int = 10,
        query_cut: int | None = None,
        heap_factor: float | None = None,
        allowed: np.ndarray | None = None,
        global_order: bool | None = None,
        params: QueryParams | None = None,
        *,
        recall: float | None = None,
        mode: str = "approx",
    ) -> SearchExplanation:
        """What one search of the query (term ids, weights) did inside the index: lists
        walked and left, blocks visited and skipped, documents scored, the heap threshold,
        and the certification bound on every unscored document
        (:class:`index.explain.SearchExplanation`)."""
        k = check_k(k)
        setting = self.query_setting(query_cut, heap_factor, global_order, params, recall, mode)
        idx, val = as_sparse_vector(indices, values, self.dim)
        return explain_query(self, idx, val, k, setting, self._allowed(allowed))

    def query_setting(
        self,
        query_cut: int | None = None,
        heap_factor: float | None = None,
        global_order: bool | None = None,
        params: QueryParams | None = None,
        recall: float | None = None,
        mode: str = "approx",
    ) -> QuerySetting:
        """The setting a search with these arguments runs (validated): the knobs come from
        ``params`` (default: the defaults) with any keyword on top; a ``recall`` target
        resolves through the calibration instead (a service shows the setting, or moves
        along the front from it)."""
        return resolve_setting(
            self.calibration, query_cut, heap_factor, global_order, params, recall, mode
        )

    def warm_up(self, k: int = 10) -> None:
        """Compile (or load from Numba's on-disk cache) every search path for this index's
        array types: one query on the caller's thread and one batch through the parallel
        kernel, approximate, certified and exact. Call it before timing anything, and at a
        server's start."""
        term = int(self.arrays.forward.terms[0] if self.arrays.forward.terms.shape[0] else 0)
        if self.arrays.forward.packed.shape[0]:
            term = int(self.arrays.forward.packed[0] >> 16)
        n = SERIAL_BATCH + 1
        queries = sp.csr_array(
            (np.ones(n, np.float32), np.full(n, term, np.int32), np.arange(n + 1)),
            shape=(n, self.dim),
        )
        with self.uncounted():
            for options in ({}, {"certify": True}, {"mode": "exact"}):
                self.search(queries[:1], k=k, **options)
                self.search(queries, k=k, **options)
                self.search_vector(queries.indices[:1], queries.data[:1], k=k, **options)

    @contextmanager
    def uncounted(self) -> Iterator[None]:
        """Searches on this thread inside the block do not add to :attr:`stats` (warm-up,
        calibration); searches on other threads meanwhile still do."""
        previous = getattr(self._local, "uncounted", False)
        self._local.uncounted = True
        try:
            yield
        finally:
            self._local.uncounted = previous

    def _certified(self, cert: np.ndarray, setting: QuerySetting) -> np.ndarray:
        if setting.mode == MODE_EXACT:
            return np.ones(cert.shape[0], dtype=bool)
        if not self.can_certify:
            return np.zeros(cert.shape[0], dtype=bool)
        return cert[:, 0] > 0.5

    def _allowed(self, allowed: np.ndarray | None) -> np.ndarray:
        if allowed is None:
            return np.empty(0, dtype=np.uint8)
        mask = np.asarray(allowed)
        if mask.shape != (self.n_docs,) or mask.dtype != np.bool_:
            raise ValueError(f"allowed must be a bool array of shape ({self.n_docs},)")
        return np.ascontiguousarray(mask).view(np.uint8)

    def _search_arrays(
        self,
        indptr: np.ndarray,
        indices: np.ndarray,
        data: np.ndarray,
        k: int,
        setting: QuerySetting,
        allowed: np.ndarray,
        certify: int,
        serial: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Run the kernels (:meth:`index.runner.KernelRunner.run`); the call's counters
        are also added to ``self.stats``."""
        if not self.can_certify:
            certify = CERTIFY_OFF
        out = self._runner.run(
            self.arrays, indptr, indices, data, k, setting, allowed, certify, serial
        )
        if not getattr(self._local, "uncounted", False):
            self.stats += out[3]
        return out

    # -------------------------------------------------------------------- I/O
    @property
    def nbytes(self) -> int:
        """Bytes of all stored arrays (what :meth:`save` writes, without file headers)."""
        return self.arrays.nbytes

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to directory ``path`` atomically (replacing an older one)."""
        _save(path, self.arrays, self.params, self.n_docs, self.dim, self.calibration)

    @classmethod
    def load(
        cls, path: str | os.PathLike, verify: bool = True, prefault: bool = False
    ) -> SeismicIndex:
        """Memory-map an index written by :meth:`save` (format 3, or 1 and 2 without
        block-max bounds); a damaged one raises :class:`index.storage.IndexFormatError`
        (a ``ValueError``).

        ``prefault`` touches every page of the mapping once, so that the first queries do
        not pay one page fault per page they reach (a warm server, a fair benchmark)."""
        arrays, manifest = load_arrays(
            path, ARRAY_NAMES, verify=verify, legacy_names=LEGACY_NAMES, optional=OPTIONAL_NAMES
        )
        try:
            params = BuildParams(**manifest["params"])
            n_docs = int(manifest["n_docs"])
            dim = int(manifest["dim"])
            calibration = manifest.get("calibration")
            calibration = None if calibration is None else Calibration.from_dict(calibration)
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexFormatError(f"{path}: bad manifest parameters: {exc}") from None
        check_structure(arrays, n_docs, dim, path)
        if prefault:
            for array in arrays.values():
                if array.nbytes >= _PAGE:
                    np.add.reduce(array.view(np.uint8)[::_PAGE], dtype=np.uint64)
        return cls(IndexArrays.from_flat(arrays), params, n_docs, dim, calibration=calibration)


_PAGE = 4096


def _save(
    path: str | os.PathLike,
    arrays: IndexArrays,
    params: BuildParams,
    n_docs: int,
    dim: int,
    calibration: Calibration | None,
) -> None:
    meta = {
        "params": params.to_dict(),
        "n_docs": n_docs,
        "dim": dim,
        "nnz": int(arrays.forward.offsets[-1]),
        "n_blocks": int(arrays.summaries.block_min.shape[0]),
        "n_postings_kept": int(arrays.postings.postings.shape[0]),
        "n_summary_entries": int(arrays.summaries.list_entries[-1]),
        "block_max_pairs": int(arrays.block_max.ranges.shape[0]),
        "calibration": None if calibration is None else calibration.to_dict(),
    }
    save_arrays(path, arrays.flat(), meta)
