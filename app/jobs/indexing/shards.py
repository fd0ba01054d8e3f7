"""Encoded shards on disk: Parquet files of (doc_id, indices, values), written atomically.

A shard file appears under its final name only once it is complete (written to a temporary
name, fsynced, renamed), so the set of shard files present *is* the job's progress: a killed
job resumes after the last complete shard and never re-encodes it. A small ``manifest.json``
pins the settings (corpus, encoder, shard size) so that a resume cannot mix two different jobs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy import sparse

from app.jobs.errors import JobStateError
from app.storage.files import fsync_dir
from app.storage.files import write_bytes_atomic as atomic_write_bytes

SHARD_FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
# The job setting that names the encoding model's files (encoders.fingerprint).
FINGERPRINT_KEY = "encoder_fingerprint"
SHARD_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("indices", pa.list_(pa.int32())),
        ("values", pa.list_(pa.float32())),
    ]
)


def matrix_to_table(doc_ids: Sequence[str], matrix: sparse.csr_array) -> pa.Table:
    """Arrow table of one shard; the CSR arrays become list offsets without copying rows."""
    if matrix.shape[0] != len(doc_ids):
        raise ValueError(f"{len(doc_ids)} doc ids for a matrix of {matrix.shape[0]} rows")
    matrix = sparse.csr_array(matrix)
    matrix.sort_indices()
    offsets = pa.array(matrix.indptr.astype(np.int32))
    indices = pa.ListArray.from_arrays(offsets, pa.array(matrix.indices.astype(np.int32)))
    values = pa.ListArray.from_arrays(offsets, pa.array(matrix.data.astype(np.float32)))
    return pa.Table.from_arrays(
        [pa.array([str(d) for d in doc_ids], pa.string()), indices, values], schema=SHARD_SCHEMA
    )


def table_to_matrix(table: pa.Table, dim: int) -> tuple[list[str], sparse.csr_array]:
    """Inverse of :func:`matrix_to_table`: (doc ids, ``csr_array`` of shape (rows, dim))."""
    doc_ids = table.column("doc_id").to_pylist()
    indices = table.column("indices").combine_chunks()
    values = table.column("values").combine_chunks()
    offsets = indices.offsets.to_numpy().astype(np.int64)
    start = offsets[0]
    indptr = offsets - start
    nnz = int(indptr[-1]) if len(indptr) else 0
    cols = indices.values.to_numpy()[start : start + nnz].astype(np.int32)
    data = values.values.to_numpy()[start : start + nnz].astype(np.float32)
    if nnz < np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    matrix = sparse.csr_array((data, cols, indptr), shape=(len(doc_ids), dim))
    matrix.indices = matrix.indices.astype(np.int32, copy=False)
    return doc_ids, matrix


def _rest(settings: dict[str, Any]) -> dict[str, Any]:
    """Job settings less the model's fingerprint."""
    return {k: v for k, v in settings.items() if k != FINGERPRINT_KEY}


def same_job(stored: Any, settings: dict[str, Any]) -> bool:
    """True when a manifest's ``stored`` settings are those of ``settings``'s job. A manifest
    written before jobs recorded their model's fingerprint matches on the rest."""
    if stored == settings:
        return True
    if not isinstance(stored, dict) or FINGERPRINT_KEY in stored:
        return False
    return stored == _rest(settings)


def raise_model_changed(folder: Path, stored: Any, settings: dict[str, Any]) -> None:
    """Raise a :class:`JobStateError` that says so when the only difference between the two
    jobs is the model behind the same encoder name."""
    if not isinstance(stored, dict) or FINGERPRINT_KEY not in stored:
        return
    if _rest(stored) == _rest(settings):
        raise JobStateError(
            f"{folder}: the model behind encoder {stored.get('encoder')!r} changed since its "
            f"shards were encoded (was {stored[FINGERPRINT_KEY]}, now "
            f"{settings.get(FINGERPRINT_KEY)}); resuming would mix two models' vectors in one "
            "index. Put the model back, or pass --overwrite to encode every document again"
        )


@dataclass
class ShardStore:
    """The ``shards/`` folder of one job: manifest, complete shard files, and their contents."""

    folder: Path

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST_NAME

    def shard_path(self, number: int) -> Path:
        return self.folder / f"shard-{number:06d}.parquet"

    def read_manifest(self) -> dict[str, Any] | None:
        if not self.manifest_path.is_file():
            return None
        return json.loads(self.manifest_path.read_text())

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.manifest_path, json.dumps(manifest, indent=2).encode())

    def open(self, settings: dict[str, Any], overwrite: bool = False) -> dict[str, Any]:
        """Start or resume: check that ``settings`` match the stored ones, return the manifest.

        Raises :class:`JobStateError` when the folder holds a job with other settings (unless
        ``overwrite``, which deletes its shards first).
        """
        manifest = self.read_manifest()
        if manifest is not None and not same_job(manifest.get("settings"), settings):
            if not overwrite:
                raise_model_changed(self.folder, manifest.get("settings"), settings)
                raise JobStateError(
                    f"{self.folder} holds shards of another job (settings "
                    f"{manifest.get('settings')} differ from {settings}); use another --out or "
                    "pass --overwrite"
                )
            self.clear()
            manifest = None
        if manifest is None:
            self.clear()
            manifest = {"format_version": SHARD_FORMAT_VERSION, "settings": settings}
            self.write_manifest(manifest)
        return manifest

    def clear(self) -> None:
        """Remove every shard file, complete or temporary (``open`` rewrites the manifest)."""
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if path.name.startswith(("shard-", ".shard-")) or path.name.startswith(".manifest"):
                path.unlink()

    def complete_shards(self) -> list[int]:
        """Numbers of the complete shards, contiguous from 0 (a gap ends the list)."""
        done = []
        number = 0
        while self.shard_path(number).is_file():
            done.append(number)
            number += 1
        return done

    def shard_rows(self, number: int) -> int:
        return int(pq.ParquetFile(self.shard_path(number)).metadata.num_rows)

    def write_shard(self, number: int, doc_ids: Sequence[str], matrix: sparse.csr_array) -> Path:
        """Write one shard atomically (temporary name, fsync, rename); return its path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.shard_path(number)
        tmp = final.with_name(f".{final.name}.tmp")
        pq.write_table(matrix_to_table(doc_ids, matrix), tmp, compression="zstd")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        fsync_dir(self.folder)
        return final

    def read_shard(self, number: int, dim: int) -> tuple[list[str], sparse.csr_array]:
        return table_to_matrix(pq.read_table(self.shard_path(number)), dim)

    def shard_paths(self) -> list[Path]:
        """The complete shard files, in order (row i of the index = row i of this stream)."""
        return [self.shard_path(n) for n in self.complete_shards()]

    def iter_doc_ids(self) -> Iterator[list[str]]:
        """Each complete shard's doc ids, in order (one column read a shard)."""
        for path in self.shard_paths():
            yield pq.read_table(path, columns=["doc_id"]).column("doc_id").to_pylist()

    def column_stats(self) -> tuple[int, int, int]:
        """``(rows, non-zeros, largest column id or -1)`` over every complete shard, read one
        shard's ``indices`` column at a time."""
        rows = nnz = 0
        top = -1
        for path in self.shard_paths():
            column = pq.read_table(path, columns=["indices"]).column("indices").combine_chunks()
            flat = column.flatten()
            rows += len(column)
            nnz += len(flat)
            if len(flat):
                top = max(top, int(pc.max(flat).as_py()))
        return rows, nnz, top

    def read_all(self, dim: int) -> tuple[list[str], sparse.csr_array]:
        """All complete shards in order, stacked into one (doc ids, ``csr_array``)."""
        doc_ids: list[str] = []
        parts = []
        for number in self.complete_shards():
            ids, matrix = self.read_shard(number, dim)
            doc_ids.extend(ids)
            parts.append(matrix)
        if not parts:
            return [], sparse.csr_array((0, dim), dtype=np.float32)
        stacked = sparse.csr_array(sparse.vstack(parts, format="csr"))
        stacked.indices = stacked.indices.astype(np.int32)
        stacked.data = stacked.data.astype(np.float32)
        return doc_ids, stacked
