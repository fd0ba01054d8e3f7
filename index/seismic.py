"""``SeismicIndex``: owns the arrays, parameters and files of a Seismic-style index and
calls the Numba kernels for build and search."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp

from index.builder import BuildParams, build_arrays
from index.kernels.exact import check_vector
from index.kernels.search import N_STATS, SearchScratch, make_scratch, search_batch, search_serial
from index.layout import ARRAY_NAMES, LEGACY_NAMES, IndexArrays
from index.params import QueryParams
from index.sources import CsrSource, MatrixSource, ParquetSource
from index.storage import IndexFormatError, load_arrays, save_arrays
from index.validation import as_csr, check_k, check_queries

# Batches this small run serially on the caller's thread with pooled scratch.
SERIAL_BATCH = 4
# The default ("workqueue") Numba threading layer is not safe for parallel kernels entered
# from several Python threads at once; this lock serialises only those calls.
_PARALLEL_LOCK = threading.Lock()


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
    _pool: list[SearchScratch] = field(default_factory=list, repr=False)
    _pool_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._max_blocks = int(np.diff(self.arrays.postings.list_blocks).max(initial=0)) or 1
        # Searches add their counters here: documents scored, blocks visited, blocks whose
        # summaries were scored, lists walked (see index.kernels.search.N_STATS).
        self.stats = np.zeros(N_STATS, dtype=np.int64)
        self._entries: dict[tuple, Any] = {}

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, docs_csr: Any, **params: Any) -> SeismicIndex:
        """Index the rows of ``docs_csr`` (scipy sparse, non-negative finite weights).

        ``params`` are :class:`BuildParams` fields: ``n_postings``, ``max_fraction``,
        ``centroid_fraction``, ``min_cluster_size``, ``summary_energy``, ``doc_cut``,
        ``seed``.
        """
        return cls.build_from_source(MatrixSource(docs_csr), **params)

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
        equals ``build`` of the same rows, bit for bit.
        """
        return cls.build_from_source(ParquetSource(paths, dim), out=out, **params)

    @classmethod
    def build_from_source(
        cls, source: CsrSource, out: str | os.PathLike | None = None, **params: Any
    ) -> SeismicIndex:
        """Index the rows of any :class:`index.sources.CsrSource` (see ``build_from_shards``
        for ``out``); e.g. ``BigAnnSource("base.csr")``."""
        unknown = set(params) - set(BuildParams.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown build parameters: {sorted(unknown)}")
        bp = BuildParams(**params)
        start = time.perf_counter()
        arrays = build_arrays(source, bp, stream=out is not None)
        seconds = time.perf_counter() - start
        n_docs = int(arrays.forward.doc_rows.shape[0])
        if out is None:
            return cls(arrays, bp, n_docs, source.n_cols, seconds)
        _save(out, arrays, bp, n_docs, source.n_cols)
        index = cls.load(out, verify=False)
        index.build_seconds = time.perf_counter() - start
        return index

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
    ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-``k`` rows for each query row by inner product.

        The knobs (see :class:`index.QueryParams`) come from ``params`` (default: the
        defaults), overridden by any given by keyword.
        ``query_cut``: heaviest query terms whose lists are walked; ``heap_factor``: a block is
        skipped when its summary score is below ``heap_factor * heap_min`` (Seismic's rule;
        smaller = more blocks visited, 0 visits every block); ``global_order``: walk the
        blocks of all cut lists in one best-first order instead of Seismic's order (the
        first list best-first, then list by list in stored block order);
        ``allowed``: optional bool (n_docs,) mask, rows where False are never returned.
        Returns ``(ids int64, scores float32)`` of shape (n_queries, k), best first, ties to
        the lower row, padded with id -1 and score 0.0.
        """
        k = check_k(k)
        qp = _query_params(params, query_cut, heap_factor, global_order)
        queries = as_csr(queries_csr, name="queries")
        check_queries(queries, self.dim)
        return self._search_arrays(
            queries.indptr,
            queries.indices,
            queries.data,
            k,
            qp.query_cut,
            qp.heap_factor,
            qp.global_order,
            self._allowed(allowed),
        )

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
    ) -> tuple[np.ndarray, np.ndarray]:
        """One query given as term ids and weights (low overhead, for a service).

        Returns ``(ids int64 (k,), scores float32 (k,))``. Same rules as :meth:`search`;
        duplicate terms are summed.
        """
        k = check_k(k)
        qp = _query_params(params, query_cut, heap_factor, global_order)
        idx = _as_1d(indices, np.int32, "indices")
        val = _as_1d(values, np.float32, "values")
        if idx.shape != val.shape:
            raise ValueError("indices and values must have the same length")
        status = check_vector(idx, val, self.dim)
        if status == 2:
            raise ValueError(f"term ids must lie in [0, {self.dim})")
        if status == 3:
            raise ValueError("values must be finite and >= 0")
        if status == 1:
            order = np.argsort(idx, kind="stable")
            idx, val = idx[order], val[order]
            uniq, start = np.unique(idx, return_index=True)
            val = np.add.reduceat(val, start).astype(np.float32) if idx.size else val
            idx = uniq.astype(np.int32)
            keep = val != 0
            idx, val = idx[keep], val[keep]
        indptr = np.array([0, idx.shape[0]], dtype=np.int64)
        ids, scores = self._search_arrays(
            indptr,
            idx,
            val,
            k,
            qp.query_cut,
            qp.heap_factor,
            qp.global_order,
            self._allowed(allowed),
        )
        return ids[0], scores[0]

    def warm_up(self, k: int = 10) -> None:
        """Compile (or load from Numba's on-disk cache) every search path for this index's
        array types: one query on the caller's thread and one batch through the parallel
        kernel. Call it before timing anything, and at a server's start."""
        term = int(self.arrays.forward.terms[0] if self.arrays.forward.terms.shape[0] else 0)
        if self.arrays.forward.packed.shape[0]:
            term = int(self.arrays.forward.packed[0] >> 16)
        n = SERIAL_BATCH + 1
        queries = sp.csr_array(
            (np.ones(n, np.float32), np.full(n, term, np.int32), np.arange(n + 1)),
            shape=(n, self.dim),
        )
        before = self.stats.copy()
        self.search(queries[:1], k=k)
        self.search(queries, k=k)
        self.search_vector(queries.indices[:1], queries.data[:1], k=k)
        self.stats[:] = before

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
        query_cut: int,
        heap_factor: float,
        global_order: bool,
        allowed: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        nq = indptr.shape[0] - 1
        max_nnz = int(indptr[1] - indptr[0]) if nq == 1 else int(np.diff(indptr).max(initial=0))
        max_cand = self._max_blocks * (min(query_cut, max_nnz) if global_order else 1)
        out_rows = np.empty((nq, k), dtype=np.int64)
        out_scores = np.empty((nq, k), dtype=np.float32)
        lists, summaries, forward = self.arrays
        if nq <= SERIAL_BATCH or numba.get_num_threads() == 1:
            scratch = self._take_scratch(max_cand)
            try:
                self._serial(
                    (
                        indptr, indices, data, query_cut, heap_factor, global_order,
                        lists, summaries, forward, allowed, scratch, out_rows, out_scores,
                    )
                )  # fmt: skip
            finally:
                # Under the GIL, and too small for NumPy to release it: no lock needed.
                self.stats += scratch.stats
                scratch.stats[:] = 0
                self._give_scratch(scratch)
            return out_rows, out_scores
        n_chunks = max(1, min(nq, numba.get_num_threads()))
        stats = np.zeros((n_chunks, N_STATS), dtype=np.int64)
        with _PARALLEL_LOCK:
            search_batch(
                indptr, indices, data, query_cut, heap_factor, global_order,
                lists, summaries, forward, allowed, self.dim, self._max_blocks,
                max(1, max_cand), n_chunks, out_rows, out_scores, stats,
            )  # fmt: skip
        self.stats += stats.sum(axis=0)
        return out_rows, out_scores

    def _serial(self, args: tuple) -> None:
        """Call ``search_serial`` through its compiled entry point.

        Numba's dispatcher types every argument on every call (here ~30 arrays inside
        four records: 10-15 us, as much as a fast query). The argument types are fixed
        per index except the writeability of the caller's arrays, so the entry point
        compiled for them is looked up once per combination and called directly.
        """
        key = (args[1].flags.writeable, args[2].flags.writeable, args[9].flags.writeable)
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
                self.dim, self.n_docs, self._max_blocks, max(self._max_blocks, max_cand)
            )
        return scratch

    def _give_scratch(self, scratch: SearchScratch) -> None:
        with self._pool_lock:
            self._pool.append(scratch)

    # -------------------------------------------------------------------- I/O
    @property
    def nbytes(self) -> int:
        """Bytes of all stored arrays (what :meth:`save` writes, without file headers)."""
        return self.arrays.nbytes

    def save(self, path: str | os.PathLike) -> None:
        """Write the index to directory ``path`` atomically (replacing an older one)."""
        _save(path, self.arrays, self.params, self.n_docs, self.dim)

    @classmethod
    def load(
        cls, path: str | os.PathLike, verify: bool = True, prefault: bool = False
    ) -> SeismicIndex:
        """Memory-map an index written by :meth:`save`; a damaged one raises
        :class:`index.storage.IndexFormatError` (a ``ValueError``).

        ``prefault`` touches every page of the mapping once, so that the first queries do
        not pay one page fault per page they reach (a warm server, a fair benchmark)."""
        arrays, manifest = load_arrays(path, ARRAY_NAMES, verify=verify, legacy_names=LEGACY_NAMES)
        try:
            params = BuildParams(**manifest["params"])
            n_docs = int(manifest["n_docs"])
            dim = int(manifest["dim"])
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexFormatError(f"{path}: bad manifest parameters: {exc}") from None
        _check_structure(arrays, n_docs, dim, path)
        if prefault:
            for array in arrays.values():
                if array.nbytes >= _PAGE:
                    np.add.reduce(array.view(np.uint8)[::_PAGE], dtype=np.uint64)
        return cls(IndexArrays.from_flat(arrays), params, n_docs, dim)


def _query_params(
    params: QueryParams | None,
    query_cut: int | None,
    heap_factor: float | None,
    global_order: bool | None,
) -> QueryParams:
    """``params`` (default: the defaults) with any knob given by keyword on top."""
    if params is not None and not isinstance(params, QueryParams):
        raise ValueError(f"params must be an index.QueryParams, got {type(params).__name__}")
    given = {
        name: value
        for name, value in (
            ("query_cut", query_cut),
            ("heap_factor", heap_factor),
            ("global_order", global_order),
        )
        if value is not None
    }
    base = params or _DEFAULT_PARAMS
    return QueryParams.from_dict(given, base) if given else base


_DEFAULT_PARAMS = QueryParams()
_PAGE = 4096


def _save(
    path: str | os.PathLike, arrays: IndexArrays, params: BuildParams, n_docs: int, dim: int
) -> None:
    meta = {
        "params": params.to_dict(),
        "n_docs": n_docs,
        "dim": dim,
        "nnz": int(arrays.forward.offsets[-1]),
        "n_blocks": int(arrays.summaries.block_min.shape[0]),
        "n_postings_kept": int(arrays.postings.postings.shape[0]),
        "n_summary_entries": int(arrays.summaries.list_entries[-1]),
    }
    save_arrays(path, arrays.flat(), meta)


def _as_1d(array: Any, dtype: type, name: str) -> np.ndarray:
    """``array`` as a contiguous 1-D ``dtype`` array (no copy when it already is one)."""
    a = array if isinstance(array, np.ndarray) else np.asarray(array)
    if a.dtype != dtype:
        kind = a.dtype.kind
        if a.size and (kind not in "iu" if dtype is np.int32 else kind not in "iuf"):
            raise ValueError(
                f"{name} must be {'integers' if dtype is np.int32 else 'reals'}, "
                f"got dtype {a.dtype}"
            )
        if dtype is np.int32 and a.size and (a.min() < 0 or a.max() > np.iinfo(np.int32).max):
            raise ValueError(f"{name} must lie in [0, 2**31)")
        a = a.astype(dtype)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _check_structure(a: dict[str, np.ndarray], n_docs: int, dim: int, path: object) -> None:
    """Cheap consistency checks so that a bad index fails here, not inside a kernel."""
    problems = []
    if a["postings.list_blocks"].shape != (dim + 1,):
        problems.append("per-term block offsets do not match dim")
    for name in ("summaries.list_terms", "summaries.list_entries", "summaries.list_block_bytes"):
        if a[name].shape != (dim + 1,):
            problems.append(f"{name} does not match dim")
    if a["forward.offsets"].shape != (n_docs + 1,):
        problems.append("forward offsets do not match n_docs")
    n_blocks = a["summaries.block_min"].shape[0]
    if a["postings.block_offsets"].shape != (n_blocks + 1,) or a["summaries.block_scale"].shape != (
        n_blocks,
    ):
        problems.append("block arrays disagree")
    ends = [
        ("postings.list_blocks", n_blocks),
        ("postings.block_offsets", a["postings.postings"].shape[0]),
        ("summaries.list_terms", a["summaries.terms"].shape[0]),
        ("summaries.list_entries", a["summaries.codes"].shape[0]),
        ("summaries.list_block_bytes", a["summaries.entry_blocks"].shape[0] - 4),
        ("forward.offsets", max(a["forward.packed"].shape[0], a["forward.terms"].shape[0])),
    ]
    for name, end in ends:
        off = a[name]
        if off.shape[0] == 0 or off[0] != 0 or off[-1] != end or np.any(np.diff(off) < 0):
            problems.append(f"{name} is not a valid offsets array")
    if a["summaries.term_entries"].shape != a["summaries.terms"].shape:
        problems.append("summaries.term_entries length")
    if a["forward.values"].shape != a["forward.terms"].shape:
        problems.append("forward values disagree with their terms")
    if a["forward.packed"].size and a["forward.terms"].size:
        problems.append("forward index stored twice")
    if a["forward.packed"].size and int(a["forward.packed"].max() >> 16) >= dim:
        problems.append("forward.packed terms out of range")
    rows = a["forward.doc_rows"]
    if rows.shape != (n_docs,):
        problems.append("forward.doc_rows does not match n_docs")
    elif n_docs and (rows.min() < 0 or rows.max() >= n_docs):
        problems.append("forward.doc_rows out of range")
    postings = a["postings.postings"]
    if postings.size and (postings.min() < 0 or postings.max() >= n_docs):
        problems.append("posting rows out of range")
    for name in ("forward.terms", "summaries.terms"):
        if a[name].size and int(a[name].max()) >= dim:
            problems.append(f"{name} out of range")
    if problems:
        raise IndexFormatError(f"{path}: inconsistent index ({'; '.join(problems)})")
