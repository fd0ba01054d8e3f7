"""Segments behind one interface: the small mutable one (searched exactly) and sealed ones.

A :class:`Segment` holds rows (internal ints) of one collection: their vectors as CSR,
``doc_ids[row]`` (the external ids), metadata, and for sealed segments maybe a Seismic index.
The sealed on-disk format is in :mod:`app.storage.sealed`.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.storage.batch import DocumentBatch, metadata_line
from app.storage.filters import MetadataFilter, scan_mask
from app.storage.plan import SearchPlan
from app.storage.vectors import SparseVector, score_rows, top_k_column

log = logging.getLogger(__name__)


class Segment(ABC):
    """Rows ``0..n_rows-1`` of a collection; readers look only below the ``n_rows`` of their
    view. ``index`` is a ``SeismicIndex`` or None (searched exactly)."""

    seg_id: int
    dim: int
    n_rows: int
    doc_ids: Sequence[str]
    index: Any = None

    @abstractmethod
    def csr(self, n_rows: int | None = None) -> sp.csr_array:
        """The first ``n_rows`` rows (all by default) as a ``csr_array`` (rows, dim)."""

    @abstractmethod
    def metadata_at(self, row: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def metadata_line(self, row: int) -> str:
        """The stored JSON text of a row's metadata (``null`` when none)."""

    @abstractmethod
    def filter_mask(self, flt: MetadataFilter, n_rows: int) -> np.ndarray:
        """``(n_rows,)`` bool: rows whose metadata passes ``flt``."""

    def vector(self, row: int) -> SparseVector:
        csr = self.csr(row + 1)
        lo, hi = int(csr.indptr[row]), int(csr.indptr[row + 1])
        return SparseVector(np.asarray(csr.indices[lo:hi]), np.asarray(csr.data[lo:hi]))


class MutableSegment(Segment):
    """Append-only rows in growable arrays; readers see a prefix of ``n_rows`` rows."""

    def __init__(self, seg_id: int, dim: int) -> None:
        self.seg_id = seg_id
        self.dim = dim
        self.indptr = np.zeros(1025, np.int64)
        self.indices = np.zeros(1 << 14, np.int32)
        self.values = np.zeros(1 << 14, np.float32)
        self.doc_ids: list[str] = []
        self.metadata: list[dict[str, Any] | None] = []
        self.n_rows = 0
        self.index = None
        self.wal_seq_start = 0  # the first WAL file holding this segment's records
        self._csr_cache: tuple[int, sp.csr_array] | None = None

    def append(self, batch: DocumentBatch) -> int:
        """Add the batch's rows, copying its CSR arrays whole (caller holds the collection's
        write lock); returns the first new row."""
        first, n = self.n_rows, len(batch)
        nnz = int(self.indptr[first])
        add = int(batch.vectors.nnz)
        if first + n + 1 > self.indptr.size:
            self.indptr = _grow(self.indptr, first + n + 1)
        if nnz + add > self.indices.size:
            self.indices = _grow(self.indices, nnz + add)
            self.values = _grow(self.values, nnz + add)
        self.indices[nnz : nnz + add] = batch.vectors.indices
        self.values[nnz : nnz + add] = batch.vectors.data
        self.indptr[first + 1 : first + n + 1] = nnz + batch.vectors.indptr[1:]
        self.doc_ids.extend(batch.doc_ids)
        self.metadata.extend(batch.metadata)
        self.n_rows = first + n  # publish last: readers only look below n_rows
        return first

    def csr(self, n_rows: int | None = None) -> sp.csr_array:
        n = self.n_rows if n_rows is None else n_rows
        cached = self._csr_cache
        if cached is not None and cached[0] == n:
            return cached[1]
        indptr = self.indptr[: n + 1]
        nnz = int(indptr[-1])
        out = sp.csr_array((self.values[:nnz], self.indices[:nnz], indptr), shape=(n, self.dim))
        self._csr_cache = (n, out)
        return out

    def metadata_at(self, row: int) -> dict[str, Any] | None:
        return self.metadata[row]

    def metadata_line(self, row: int) -> str:
        return metadata_line(self.metadata[row])

    def filter_mask(self, flt: MetadataFilter, n_rows: int) -> np.ndarray:
        return scan_mask(self.metadata[:n_rows], flt)


def _grow(array: np.ndarray, need: int) -> np.ndarray:
    out = np.zeros(max(need, 2 * array.size), array.dtype)
    out[: array.size] = array
    return out


def parse_metadata(raw: str) -> dict[str, Any] | None:
    return None if raw == "null" else json.loads(raw)


# A filter that leaves at most this many rows is scored exactly (cheaper than the index).
EXACT_SUBSET_ROWS = 2_000
# A filtered index search that comes back short is redone exactly up to this many rows.
FALLBACK_SUBSET_ROWS = 50_000


def search_segment(
    segment: Segment,
    n_rows: int,
    allowed: np.ndarray | None,
    queries: Sequence[SparseVector],
    k: int,
    plan: SearchPlan,
    *,
    filtered: bool = False,
) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """Top-``k`` ``(rows, scores, certified)`` per query among the first ``n_rows`` rows
    where ``allowed``; ``certified``: this segment's top-k is proven exact.

    Indexed segments run the Seismic kernel as ``plan`` says, with ``allowed`` (tombstones
    and filter) inside it, so hidden rows never take a slot. A filter leaving few rows is
    scored exactly; a filtered index search that finds fewer than ``k`` hits is redone
    exactly on the allowed rows (up to ``FALLBACK_SUBSET_ROWS``). Segments without an index
    are scored exactly. An approximate answer is certified only when ``plan.certify`` asked
    the index to check it; exact answers always are.
    """
    n_allowed = n_rows if allowed is None else int(allowed[:n_rows].sum())
    if n_allowed == 0 or n_rows == 0:
        empty = (np.zeros(0, np.int64), np.zeros(0, np.float32), True)
        return [empty for _ in queries]
    out: list[tuple[np.ndarray, np.ndarray, bool] | None] = [None] * len(queries)
    index = segment.index
    use_index = index is not None and not (filtered and n_allowed <= EXACT_SUBSET_ROWS)
    if use_index:
        kwargs = plan.index_kwargs(index)
        exact_mode = plan.runs_exact(index)
        certify = plan.certify and not exact_mode
        for j, q in enumerate(queries):
            found = index.search_vector(
                q.indices, q.values, k=min(k, n_rows), allowed=allowed, certify=certify, **kwargs
            )
            rows, scores = found[0], found[1]
            keep = rows >= 0
            short = (
                filtered and keep.sum() < min(k, n_allowed) and n_allowed <= FALLBACK_SUBSET_ROWS
            )
            if not short:
                out[j] = (rows[keep], scores[keep], exact_mode or (certify and bool(found[2])))
    todo = [j for j, r in enumerate(out) if r is None]
    if todo:
        csr = segment.csr(n_rows)
        rows_sel = None
        if allowed is not None and n_allowed < n_rows:
            rows_sel = np.flatnonzero(allowed[:n_rows])
            csr = csr[rows_sel]
        scores = score_rows(csr, [queries[j] for j in todo], segment.dim)
        for col, j in enumerate(todo):
            rows, vals = top_k_column(scores[:, col], k)
            if rows_sel is not None:
                rows = rows_sel[rows]
            out[j] = (rows, vals, True)
    return out  # type: ignore[return-value]
