"""Segments: the small mutable one (searched exactly) and sealed, immutable ones on disk.

A sealed segment folder holds the document vectors (``indptr/indices/values.npy``,
memory-mapped), ``doc_ids.json``, ``metadata.jsonl`` (one JSON value per row), ``deleted.npy``
(tombstones, rewritten at checkpoints) and, when it has at least ``flat_segment_rows`` rows,
a Seismic index in ``index/``. Rows are internal ints; ``doc_ids[row]`` is the external id.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.storage.files import fsync_tree, save_npy, save_npy_atomic, write_bytes_atomic
from app.storage.filters import FieldIndex, MetadataFilter, scan_mask
from app.storage.vectors import SparseVector, dense_queries, top_k_column

log = logging.getLogger(__name__)
SEGMENT_FORMAT = 1


class MutableSegment:
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

    def append(
        self, doc_ids: Sequence[str], vectors: Sequence[SparseVector], metadata: Sequence[Any]
    ) -> int:
        """Add rows (caller holds the collection's write lock); returns the first new row."""
        first = self.n_rows
        nnz = int(self.indptr[first])
        add = sum(v.indices.size for v in vectors)
        if first + len(vectors) + 1 > self.indptr.size:
            self.indptr = _grow(self.indptr, first + len(vectors) + 1)
        if nnz + add > self.indices.size:
            self.indices = _grow(self.indices, nnz + add)
            self.values = _grow(self.values, nnz + add)
        pos = nnz
        for i, vec in enumerate(vectors):
            end = pos + vec.indices.size
            self.indices[pos:end] = vec.indices
            self.values[pos:end] = vec.values
            self.indptr[first + i + 1] = end
            pos = end
        self.doc_ids.extend(doc_ids)
        self.metadata.extend(metadata)
        self.n_rows = first + len(vectors)  # publish last: readers only look below n_rows
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

    def filter_mask(self, flt: MetadataFilter, n_rows: int) -> np.ndarray:
        return scan_mask(self.metadata[:n_rows], flt)


def _grow(array: np.ndarray, need: int) -> np.ndarray:
    out = np.zeros(max(need, 2 * array.size), array.dtype)
    out[: array.size] = array
    return out


class SealedSegment:
    """An immutable segment folder, memory-mapped; built once by :meth:`write`."""

    def __init__(
        self, seg_id: int, path: Path, dim: int, index_params: dict[str, Any] | None = None
    ) -> None:
        self.seg_id = seg_id
        self.path = path
        self.dim = dim
        indptr = np.load(path / "indptr.npy", mmap_mode="r")
        indices = np.load(path / "indices.npy", mmap_mode="r")
        values = np.load(path / "values.npy", mmap_mode="r")
        self.n_rows = int(indptr.shape[0] - 1)
        self._csr = sp.csr_array((values, indices, indptr), shape=(self.n_rows, dim))
        self.doc_ids: list[str] = json.loads((path / "doc_ids.json").read_text())
        with open(path / "metadata.jsonl", encoding="utf-8") as handle:
            self._metadata_raw = [line.rstrip("\n") for line in handle]
        self.index = None
        if (path / "index").is_dir():
            self.index = self._load_index(index_params)
        self.field_index = FieldIndex(self.n_rows, self.metadata_at)

    def _load_index(self, index_params: dict[str, Any] | None) -> Any:
        """Memory-map the index; one that is damaged or of an older format is rebuilt from the
        segment's own vectors (which stay the source of truth) when the build params are known."""
        from index import SeismicIndex

        try:
            return SeismicIndex.load(self.path / "index")
        except (ValueError, OSError, KeyError) as exc:
            if index_params is None:
                raise
            log.warning("segment %s: index unreadable (%s); rebuilding it", self.path.name, exc)
            index = SeismicIndex.build(self._csr, **index_params)
            index.save(self.path / "index")
            return SeismicIndex.load(self.path / "index")

    def csr(self, n_rows: int | None = None) -> sp.csr_array:
        return self._csr

    def metadata_at(self, row: int) -> dict[str, Any] | None:
        raw = self._metadata_raw[row]
        return None if raw == "null" else json.loads(raw)

    def metadata_line(self, row: int) -> str:
        """The stored JSON text of a row's metadata (``null`` when none)."""
        return self._metadata_raw[row]

    def filter_mask(self, flt: MetadataFilter, n_rows: int) -> np.ndarray:
        return self.field_index.mask(flt)

    def load_deleted(self) -> np.ndarray:
        path = self.path / "deleted.npy"
        if path.exists():
            mask = np.load(path)
            if mask.shape == (self.n_rows,):
                return mask.astype(bool)
        return np.zeros(self.n_rows, bool)

    def save_deleted(self, deleted: np.ndarray) -> None:
        save_npy_atomic(self.path / "deleted.npy", deleted.astype(bool))

    @staticmethod
    def write(
        path: Path,
        vectors: sp.csr_array,
        doc_ids: Sequence[str],
        metadata_lines: Sequence[str],
        deleted: np.ndarray,
        *,
        index_params: dict[str, Any],
        flat_rows: int,
    ) -> None:
        """Write a complete segment folder at ``path`` (via a temporary folder and a rename)."""
        tmp = path.with_name(f".{path.name}.tmp")
        for stale in (tmp, path):  # left by an earlier failed attempt; not in the manifest
            if stale.exists():
                shutil.rmtree(stale)
        tmp.mkdir(parents=True)
        save_npy(tmp / "indptr.npy", np.asarray(vectors.indptr, np.int64))
        save_npy(tmp / "indices.npy", np.asarray(vectors.indices, np.int32))
        save_npy(tmp / "values.npy", np.asarray(vectors.data, np.float32))
        write_bytes_atomic(tmp / "doc_ids.json", json.dumps(list(doc_ids)).encode())
        lines = "".join(line + "\n" for line in metadata_lines)
        write_bytes_atomic(tmp / "metadata.jsonl", lines.encode())
        save_npy(tmp / "deleted.npy", deleted.astype(bool))
        if vectors.shape[0] >= max(flat_rows, 1) and vectors.nnz > 0:
            from index import SeismicIndex

            SeismicIndex.build(vectors, **index_params).save(tmp / "index")
        write_bytes_atomic(
            tmp / "segment.json",
            json.dumps({"format": SEGMENT_FORMAT, "rows": int(vectors.shape[0])}).encode(),
        )
        fsync_tree(tmp)
        tmp.rename(path)


Segment = MutableSegment | SealedSegment


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
    query_params: dict[str, Any],
    *,
    filtered: bool = False,
    exact: bool = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Top-``k`` ``(rows, scores)`` per query among the first ``n_rows`` rows where ``allowed``.

    Indexed segments run the Seismic kernel with ``allowed`` (tombstones and filter) inside
    it, so hidden rows never take a slot. A filter leaving few rows is scored exactly; a
    filtered index search that finds fewer than ``k`` hits is redone exactly on the allowed
    rows (up to ``FALLBACK_SUBSET_ROWS``). Segments without an index are scored exactly.
    """
    n_allowed = n_rows if allowed is None else int(allowed[:n_rows].sum())
    if n_allowed == 0 or n_rows == 0:
        empty = (np.zeros(0, np.int64), np.zeros(0, np.float32))
        return [empty for _ in queries]
    out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(queries)
    index = segment.index
    use_index = (
        index is not None and not exact and not (filtered and n_allowed <= EXACT_SUBSET_ROWS)
    )
    if use_index:
        for j, q in enumerate(queries):
            rows, scores = index.search_vector(
                q.indices, q.values, k=min(k, n_rows), allowed=allowed, **query_params
            )
            keep = rows >= 0
            short = (
                filtered and keep.sum() < min(k, n_allowed) and n_allowed <= FALLBACK_SUBSET_ROWS
            )
            if not short:
                out[j] = (rows[keep], scores[keep])
    todo = [j for j, r in enumerate(out) if r is None]
    if todo:
        csr = segment.csr(n_rows)
        rows_sel = None
        if allowed is not None and n_allowed < n_rows:
            rows_sel = np.flatnonzero(allowed[:n_rows])
            csr = csr[rows_sel]
        dense = dense_queries([queries[j] for j in todo], segment.dim)
        scores = np.asarray(csr @ dense)
        for col, j in enumerate(todo):
            rows, vals = top_k_column(scores[:, col], k)
            if rows_sel is not None:
                rows = rows_sel[rows]
            out[j] = (rows, vals)
    return out  # type: ignore[return-value]
