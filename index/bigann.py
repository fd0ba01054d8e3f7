"""The big-ann-benchmarks sparse format (NeurIPS'23 sparse track), read memory-mapped.

``.csr`` matrix: little-endian int64 ``n_rows, n_cols, nnz``, then int64
``indptr[n_rows + 1]``, int32 ``indices[nnz]``, float32 ``data[nnz]``.
Ground truth: uint32 ``n, k``, then int32 ``ids[n * k]``, float32 ``scores[n * k]``
(row-major, best first).

A file whose size disagrees with its header, or whose ``indptr``/``indices`` are
inconsistent, raises :class:`BigAnnFormatError` naming the file and what is wrong; nothing
is ever silently cut or padded. Writers go through a temporary name and a rename, so a
half-written file never carries the final name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import scipy.sparse as sp

HEADER_BYTES = 24
GT_HEADER_BYTES = 8
# Validation reads big files in slices of this many entries (bounded memory).
CHECK_CHUNK = 1 << 24


class BigAnnFormatError(ValueError):
    """A big-ann ``.csr`` or ground-truth file is damaged or inconsistent."""


def csr_file_bytes(n_rows: int, nnz: int) -> int:
    """Exact size of a ``.csr`` file with ``n_rows`` rows and ``nnz`` entries."""
    return HEADER_BYTES + 8 * (n_rows + 1) + 8 * nnz


@dataclass(frozen=True)
class CsrFile:
    """A memory-mapped ``.csr`` matrix. Arrays are read-only views into the file.

    ``indptr`` int64 (n_rows + 1,), ``indices`` int32 (nnz,), ``data`` float32 (nnz,).
    :meth:`rows` reads with plain file reads instead of through the mapping, so that a
    process streaming a large file chunk by chunk keeps no file pages in its resident set
    (what a peak-RSS measurement would otherwise count).
    """

    path: Path
    n_rows: int
    n_cols: int
    nnz: int
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_rows, self.n_cols)

    @property
    def indices_offset(self) -> int:
        return HEADER_BYTES + 8 * (self.n_rows + 1)

    @property
    def data_offset(self) -> int:
        return self.indices_offset + 4 * self.nnz

    def read(self, dtype: str, offset: int, count: int) -> np.ndarray:
        """``count`` values of ``dtype`` from byte ``offset``, by a plain read (no mapping)."""
        if count == 0:
            return np.empty(0, dtype=dtype)
        out = np.fromfile(self.path, dtype=dtype, count=count, offset=offset)
        if out.shape[0] != count:
            raise BigAnnFormatError(f"{self.path}: short read at byte {offset}")
        return out

    def rows(self, start: int, stop: int) -> sp.csr_array:
        """Rows ``[start, stop)`` read into memory as a ``csr_array`` (int32 indices)."""
        if not 0 <= start <= stop <= self.n_rows:
            raise ValueError(f"row range [{start}, {stop}) outside [0, {self.n_rows}]")
        indptr = self.read("<i8", HEADER_BYTES + 8 * start, stop - start + 1).astype(np.int64)
        a, b = int(indptr[0]), int(indptr[-1])
        indices = self.read("<i4", self.indices_offset + 4 * a, b - a).astype(np.int32)
        data = self.read("<f4", self.data_offset + 4 * a, b - a).astype(np.float32)
        return sp.csr_array((data, indices, indptr - a), shape=(stop - start, self.n_cols))

    def to_scipy(self) -> sp.csr_array:
        """The whole matrix copied into memory."""
        return self.rows(0, self.n_rows)


def read_csr(path: str | os.PathLike, check_indices: bool = True) -> CsrFile:
    """Memory-map a ``.csr`` file and check it (``check_indices``: also every column id,
    one bounded-memory pass over ``indices``)."""
    path = Path(path)
    size = path.stat().st_size
    if size < HEADER_BYTES:
        raise BigAnnFormatError(
            f"{path}: truncated header ({size} bytes; a .csr file starts with 24 bytes "
            "n_rows, n_cols, nnz)"
        )
    n_rows, n_cols, nnz = (int(v) for v in np.fromfile(path, dtype="<i8", count=3))
    if n_rows < 0 or n_cols < 0 or nnz < 0:
        raise BigAnnFormatError(
            f"{path}: negative header value (n_rows {n_rows}, n_cols {n_cols}, nnz {nnz})"
        )
    if n_cols > np.iinfo(np.int32).max + 1:
        raise BigAnnFormatError(f"{path}: n_cols {n_cols} does not fit int32 column ids")
    expected = csr_file_bytes(n_rows, nnz)
    if size != expected:
        what = "truncated" if size < expected else "has trailing bytes"
        raise BigAnnFormatError(
            f"{path}: {what}: header says {n_rows} rows and {nnz} non-zeros = {expected} "
            f"bytes, the file has {size}"
        )
    indptr = np.memmap(path, dtype="<i8", mode="r", offset=HEADER_BYTES, shape=(n_rows + 1,))
    off = HEADER_BYTES + 8 * (n_rows + 1)
    if nnz:
        indices = np.memmap(path, dtype="<i4", mode="r", offset=off, shape=(nnz,))
        data = np.memmap(path, dtype="<f4", mode="r", offset=off + 4 * nnz, shape=(nnz,))
    else:  # numpy cannot map zero bytes
        indices, data = np.empty(0, np.int32), np.empty(0, np.float32)
    csr = CsrFile(path, n_rows, n_cols, nnz, indptr, indices, data)
    _check_indptr(csr)
    if check_indices:
        _check_indices(csr)
    return csr


def _check_indptr(csr: CsrFile) -> None:
    first = int(csr.read("<i8", HEADER_BYTES, 1)[0])
    last = int(csr.read("<i8", HEADER_BYTES + 8 * csr.n_rows, 1)[0])
    if first != 0 or last != csr.nnz:
        raise BigAnnFormatError(
            f"{csr.path}: indptr runs from {first} to {last}, expected 0 to nnz = {csr.nnz}"
        )
    for a in range(0, csr.n_rows, CHECK_CHUNK):
        part = csr.read("<i8", HEADER_BYTES + 8 * a, min(CHECK_CHUNK, csr.n_rows - a) + 1)
        step = np.diff(part)
        if step.size and step.min() < 0:
            row = a + int(np.argmax(step < 0))
            raise BigAnnFormatError(f"{csr.path}: indptr decreases at row {row}")


def _check_indices(csr: CsrFile) -> None:
    for a in range(0, csr.nnz, CHECK_CHUNK):
        part = csr.read("<i4", csr.indices_offset + 4 * a, min(CHECK_CHUNK, csr.nnz - a))
        lo, hi = int(part.min()), int(part.max())
        if lo < 0 or hi >= csr.n_cols:
            where = int(np.argmax((part < 0) | (part >= csr.n_cols)))
            raise BigAnnFormatError(
                f"{csr.path}: column id {int(part[where])} at entry {a + where} outside "
                f"[0, {csr.n_cols})"
            )


class CsrWriter:
    """Streams rows into a ``.csr`` file whose ``n_rows``, ``n_cols`` and ``nnz`` are known
    up front, so that no part of the matrix is ever held whole.

    ``append`` takes consecutive row chunks; ``close`` checks that exactly ``n_rows`` rows
    and ``nnz`` entries arrived, then renames the temporary file to ``path``. Leaving the
    ``with`` block by an exception removes the temporary file.
    """

    def __init__(self, path: str | os.PathLike, n_rows: int, n_cols: int, nnz: int) -> None:
        self.path = Path(path)
        self.n_rows, self.n_cols, self.nnz = int(n_rows), int(n_cols), int(nnz)
        self.rows_done = 0
        self.nnz_done = 0
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        off_i = HEADER_BYTES + 8 * (self.n_rows + 1)
        with open(self.tmp, "wb") as f:
            f.truncate(csr_file_bytes(self.n_rows, self.nnz))
            np.array([self.n_rows, self.n_cols, self.nnz, 0], dtype="<i8").tofile(f)
        self._ptr = open(self.tmp, "r+b")
        self._ptr.seek(HEADER_BYTES + 8)
        self._ind = open(self.tmp, "r+b")
        self._ind.seek(off_i)
        self._dat = open(self.tmp, "r+b")
        self._dat.seek(off_i + 4 * self.nnz)

    def append(self, chunk: sp.csr_array | sp.csr_matrix) -> None:
        """Write the next ``chunk.shape[0]`` rows (columns must be ``n_cols`` wide)."""
        if chunk.shape[1] != self.n_cols:
            raise ValueError(f"chunk has {chunk.shape[1]} columns, the file {self.n_cols}")
        rows, nnz = int(chunk.shape[0]), int(chunk.nnz)
        if self.rows_done + rows > self.n_rows or self.nnz_done + nnz > self.nnz:
            raise ValueError(
                f"{self.path}: more than the announced {self.n_rows} rows / {self.nnz} non-zeros"
            )
        indptr = np.asarray(chunk.indptr, dtype=np.int64)
        (indptr[1:] - indptr[0] + self.nnz_done).astype("<i8").tofile(self._ptr)
        a, b = int(indptr[0]), int(indptr[-1])
        np.asarray(chunk.indices[a:b]).astype("<i4", copy=False).tofile(self._ind)
        np.asarray(chunk.data[a:b]).astype("<f4", copy=False).tofile(self._dat)
        self.rows_done += rows
        self.nnz_done += nnz

    def close(self) -> Path:
        """Finish the file; raises ``ValueError`` (and removes it) when rows are missing."""
        for f in (self._ptr, self._ind, self._dat):
            f.flush()
            os.fsync(f.fileno())
            f.close()
        if self.rows_done != self.n_rows or self.nnz_done != self.nnz:
            self.tmp.unlink(missing_ok=True)
            raise ValueError(
                f"{self.path}: wrote {self.rows_done} rows / {self.nnz_done} non-zeros, "
                f"announced {self.n_rows} / {self.nnz}"
            )
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        for f in (self._ptr, self._ind, self._dat):
            f.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> CsrWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_csr(path: str | os.PathLike, matrix: sp.csr_array | sp.csr_matrix) -> Path:
    """Write a whole (in-memory) sparse matrix as a ``.csr`` file."""
    csr = sp.csr_array(matrix)
    with CsrWriter(path, csr.shape[0], csr.shape[1], csr.nnz) as w:
        w.append(csr)
    return Path(path)


def read_gt(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Memory-map a ground-truth file: ``(ids int32 (n, k), scores float32 (n, k))``."""
    path = Path(path)
    size = path.stat().st_size
    if size < GT_HEADER_BYTES:
        raise BigAnnFormatError(
            f"{path}: truncated header ({size} bytes; a ground-truth file starts with uint32 n, k)"
        )
    n, k = (int(v) for v in np.fromfile(path, dtype="<u4", count=2))
    expected = GT_HEADER_BYTES + 8 * n * k
    if size != expected:
        what = "truncated" if size < expected else "has trailing bytes"
        raise BigAnnFormatError(
            f"{path}: {what}: header says {n} queries x k {k} = {expected} bytes, "
            f"the file has {size}"
        )
    if n == 0 or k == 0:
        return np.empty((n, k), np.int32), np.empty((n, k), np.float32)
    ids = np.memmap(path, dtype="<i4", mode="r", offset=GT_HEADER_BYTES, shape=(n, k))
    off = GT_HEADER_BYTES + 4 * n * k
    scores = np.memmap(path, dtype="<f4", mode="r", offset=off, shape=(n, k))
    return ids, scores


def write_gt(path: str | os.PathLike, ids: np.ndarray, scores: np.ndarray) -> Path:
    """Write ``ids`` (n, k) and ``scores`` (n, k) as a ground-truth file (ids as int32)."""
    ids, scores = np.asarray(ids), np.asarray(scores)
    if ids.ndim != 2 or ids.shape != scores.shape:
        raise ValueError(f"ids {ids.shape} and scores {scores.shape} must be equal 2-D shapes")
    if ids.size and (ids.min() < -1 or ids.max() > np.iinfo(np.int32).max):
        raise ValueError("ids must fit int32 (-1 marks a missing answer)")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        np.array(ids.shape, dtype="<u4").tofile(f)
        ids.astype("<i4").tofile(f)
        scores.astype("<f4").tofile(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path
