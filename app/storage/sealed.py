"""Sealed segments: immutable, memory-mapped, every file checksummed.

A segment folder holds one Arrow IPC file per array (``indptr`` int64, ``indices`` int32,
``values`` float32, ``doc_ids`` and ``metadata`` strings: JSON text, ``null`` when none),
``manifest.json`` (format, version, counts and each file's size and CRC-32, itself
checksummed), ``deleted.bin`` (tombstones, rewritten at checkpoints, CRC-checked) and, when it
has enough rows, a Seismic index in ``index/`` (with its own manifest); a segment of a
multi-field collection has one index per field instead, ``index-<field>/``, each built from
that field's columns only (:mod:`app.storage.fields`). Opening verifies every
checksum and the CSR structure (offsets, column range, positive finite weights) before
anything is served: a damaged segment raises :class:`DamageError` and is never searched. The
index is derived data: one that is damaged is rebuilt from the verified vectors.
"""

from __future__ import annotations

import logging
import shutil
import struct
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.storage.checked import (
    DamageError,
    read_array,
    read_checked_bytes,
    read_checked_json,
    verify_file,
    write_array,
    write_checked_bytes,
    write_checked_json,
)
from app.storage.fields import ColumnMappedIndex, FieldLayout, compact_columns, field_part
from app.storage.files import fsync_tree
from app.storage.filters import FieldIndex, MetadataFilter
from app.storage.segment import Segment, parse_metadata

log = logging.getLogger(__name__)
SEGMENT_FORMAT = "lsr-segment"
SEGMENT_VERSION = 2
ARRAYS = ("indptr", "indices", "values", "doc_ids", "metadata")
MANIFEST = "manifest.json"
TOMBSTONES = "deleted.bin"
_COUNT = struct.Struct("<Q")


def check_csr(
    indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, dim: int, where: str
) -> None:
    """The CSR arrays of a segment are consistent: offsets from 0 to nnz, never decreasing;
    columns in [0, dim); weights finite and > 0 (what the kernels assume)."""
    nnz = indices.shape[0]
    if indptr.shape[0] < 1 or indptr[0] != 0 or indptr[-1] != nnz or values.shape[0] != nnz:
        raise DamageError(f"{where}: row offsets do not match {nnz} non-zeros")
    if np.any(np.diff(indptr) < 0):
        raise DamageError(f"{where}: row offsets decrease")
    if nnz and (int(indices.min()) < 0 or int(indices.max()) >= dim):
        raise DamageError(f"{where}: column ids outside [0, {dim})")
    if nnz and not (np.all(values > 0) and np.isfinite(values).all()):
        raise DamageError(f"{where}: weights that are not finite and positive")


class SealedSegment(Segment):
    """An immutable segment folder, verified and memory-mapped; built once by :meth:`write`."""

    def __init__(
        self,
        seg_id: int,
        path: Path,
        dim: int,
        index_params: dict[str, Any] | None = None,
        *,
        calibrate: bool = False,
        fields: Sequence[FieldLayout] | None = None,
    ) -> None:
        self.seg_id, self.path, self.dim = seg_id, path, dim
        self.calibrate = calibrate
        self.name = f"segments/{path.name}"
        if not path.is_dir():
            raise DamageError(f"{self.name} is missing")
        manifest = read_checked_json(path / MANIFEST, f"{self.name}/{MANIFEST}")
        if (manifest.get("format"), manifest.get("version")) != (SEGMENT_FORMAT, SEGMENT_VERSION):
            raise DamageError(f"{self.name} is not a {SEGMENT_FORMAT} v{SEGMENT_VERSION} segment")
        if manifest.get("dim") != dim:
            raise DamageError(f"{self.name} has dim {manifest.get('dim')}, the collection {dim}")
        arrays = {}
        for name in ARRAYS:
            where = f"{self.name}/{name}.arrow"
            verify_file(path / f"{name}.arrow", manifest["files"].get(name, {}), where)
            arrays[name] = read_array(path / f"{name}.arrow", where)
        indptr = arrays["indptr"].to_numpy(zero_copy_only=True)
        indices = arrays["indices"].to_numpy(zero_copy_only=True)
        values = arrays["values"].to_numpy(zero_copy_only=True)
        check_csr(indptr, indices, values, dim, self.name)
        self.n_rows = int(indptr.shape[0] - 1)
        if len(arrays["doc_ids"]) != self.n_rows or len(arrays["metadata"]) != self.n_rows:
            raise DamageError(f"{self.name}: ids or metadata do not match {self.n_rows} rows")
        self._csr = sp.csr_array((values, indices, indptr), shape=(self.n_rows, dim))
        self.doc_ids: list[str] = arrays["doc_ids"].to_pylist()
        self._metadata = arrays["metadata"]
        self.index = self._load_index(index_params) if manifest.get("indexed") else None
        # Per field (multi-field collections): its index, or None (scored exactly).
        self.indexes: dict[str, Any] = {}
        for layout in fields or ():
            if layout.name in manifest.get("indexes", []):
                self.indexes[layout.name] = self._load_field_index(layout)
        self.field_index = FieldIndex(self.n_rows, self.metadata_at)

    def _load_index(
        self,
        index_params: dict[str, Any] | None,
        folder: str = "index",
        layout: FieldLayout | None = None,
    ) -> Any:
        """Memory-map an index; one that is damaged or of an older format is rebuilt from the
        segment's verified vectors (the source of truth) when the build params are known."""
        from index import SeismicIndex

        try:
            return SeismicIndex.load(self.path / folder)
        except (ValueError, OSError, KeyError) as exc:
            if index_params is None:
                raise DamageError(f"{self.name}/{folder} is unreadable ({exc})") from None
            log.warning("%s: %s unreadable (%s); rebuilding it", self.name, folder, exc)
            vectors = self._csr if layout is None else self._field_vectors(layout)[0]
            index = build_index(vectors, index_params, self.calibrate, self.name)
            shutil.rmtree(self.path / folder, ignore_errors=True)
            index.save(self.path / folder)
            return SeismicIndex.load(self.path / folder)

    def _field_vectors(self, layout: FieldLayout) -> tuple[sp.csr_array, np.ndarray]:
        return compact_columns(field_part(self._csr, layout))

    def _load_field_index(self, layout: FieldLayout) -> ColumnMappedIndex:
        """A field's index (built on the field's columns present here, compacted), taking
        queries in the collection's columns; the column map is derived from the verified
        vectors."""
        index = self._load_index(layout.index_params, f"index-{layout.name}", layout)
        cols = np.asarray(self._csr.indices)
        held = cols[(cols >= layout.indexed_from) & (cols < layout.end)]
        return ColumnMappedIndex(index, np.unique(held).astype(np.int32))

    def csr(self, n_rows: int | None = None) -> sp.csr_array:
        return self._csr

    def metadata_line(self, row: int) -> str:
        return self._metadata[row].as_py()

    def metadata_at(self, row: int) -> dict[str, Any] | None:
        return parse_metadata(self.metadata_line(row))

    def filter_mask(self, flt: MetadataFilter, n_rows: int) -> np.ndarray:
        return self.field_index.mask(flt)

    def load_deleted(self) -> np.ndarray:
        """The tombstones, checksum verified: ``(n_rows,)`` bool."""
        data = read_checked_bytes(self.path / TOMBSTONES, f"{self.name}/{TOMBSTONES}")
        (count,) = _COUNT.unpack_from(data)
        if count != self.n_rows or len(data) != _COUNT.size + (count + 7) // 8:
            raise DamageError(f"{self.name}/{TOMBSTONES} does not match {self.n_rows} rows")
        bits = np.frombuffer(data, np.uint8, offset=_COUNT.size)
        return np.unpackbits(bits, count=count).astype(bool)

    def save_deleted(self, deleted: np.ndarray) -> None:
        save_tombstones(self.path, deleted)

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
        calibrate: bool = False,
        fields: Sequence[FieldLayout] | None = None,
    ) -> None:
        """Write a complete segment folder at ``path`` (via a temporary folder and a rename);
        with ``calibrate`` its index carries its measured recall/cost front. With ``fields``
        (a multi-field collection), one index per field with rows in it, from that field's
        columns and with its own build parameters, instead of one index."""
        tmp = path.with_name(f".{path.name}.tmp")
        for stale in (tmp, path):  # left by an earlier failed attempt; not in the manifest
            if stale.exists():
                shutil.rmtree(stale)
        tmp.mkdir(parents=True)
        columns = {
            "indptr": np.asarray(vectors.indptr, np.int64),
            "indices": np.asarray(vectors.indices, np.int32),
            "values": np.asarray(vectors.data, np.float32),
            "doc_ids": list(doc_ids),
            "metadata": list(metadata_lines),
        }
        files = {name: write_array(tmp / f"{name}.arrow", array) for name, array in columns.items()}
        save_tombstones(tmp, deleted)
        big = vectors.shape[0] >= max(flat_rows, 1)
        indexed = big and vectors.nnz > 0 and not fields
        if indexed:
            build_index(vectors, index_params, calibrate, path.name).save(tmp / "index")
        indexes = []
        for layout in (fields or ()) if big else ():
            part, _ = compact_columns(field_part(vectors, layout))
            if part.nnz:
                name = f"{path.name}/{layout.name}"
                build_index(part, layout.index_params, calibrate, name).save(
                    tmp / f"index-{layout.name}"
                )
                indexes.append(layout.name)
        rows = int(vectors.shape[0])
        write_checked_json(
            tmp / MANIFEST,
            {
                "format": SEGMENT_FORMAT,
                "version": SEGMENT_VERSION,
                "rows": rows,
                "nnz": int(vectors.nnz),
                "dim": int(vectors.shape[1]),
                "indexed": indexed,
                "indexes": indexes,
                "files": files,
            },
        )
        fsync_tree(tmp)
        tmp.rename(path)


def build_index(
    vectors: sp.csr_array, index_params: dict[str, Any], calibrate: bool, name: str
) -> Any:
    """A segment's Seismic index; with ``calibrate`` also its recall/cost front, measured on
    pseudo-queries drawn from its documents. Calibration only serves recall targets: should it
    fail, the segment is kept without one (searched exactly under a target) and it is logged."""
    from index import SeismicIndex

    index = SeismicIndex.build(vectors, **index_params)
    if calibrate:
        start = time.perf_counter()
        try:
            cal = index.calibrate()
        except Exception:  # optional: a failure must never stop a seal or a merge
            log.exception("%s: calibration failed; recall targets search it exactly", name)
        else:
            log.info(
                "%s: calibrated %d rows in %.2fs: %d front settings",
                name,
                index.n_docs,
                time.perf_counter() - start,
                len(cal.front),
            )
    return index


def save_tombstones(folder: Path, deleted: np.ndarray) -> None:
    """``deleted.bin``: row count, the bits, CRC-32 (atomically replaced)."""
    mask = np.asarray(deleted, bool)
    write_checked_bytes(folder / TOMBSTONES, _COUNT.pack(mask.size) + np.packbits(mask).tobytes())
