"""Inputs of the build, read chunk by chunk: the whole input matrix is never in memory.

A :class:`CsrSource` yields validated CSR chunks (rows in order) as many times as the
build asks (it reads its input twice). Three kinds:

* :class:`MatrixSource`: a scipy sparse matrix already in memory (``SeismicIndex.build``);
* :class:`ParquetSource`: Parquet shards with list columns ``indices`` (int32) and
  ``values`` (float32), one row per document, as ``lsr index`` writes them;
* :class:`BigAnnSource`: a big-ann-benchmarks sparse ``.csr`` file (NeurIPS'23 sparse
  track, :mod:`index.bigann`).

A damaged input raises ``ValueError`` naming the file and what is wrong; it is never cut.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from index.bigann import read_csr
from index.validation import CsrArrays, as_csr

# Rows per chunk are chosen so that a chunk holds about this many non-zeros.
CHUNK_NNZ = 1 << 22


class CsrSource:
    """Rows of a sparse matrix, chunk by chunk. ``n_cols`` is known up front."""

    n_cols: int

    def chunks(self) -> Iterator[CsrArrays]:
        """Validated chunks (``CsrArrays``), rows in order; may be called repeatedly."""
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__


def _chunk(indptr, indices, data, n_cols: int, what: str) -> CsrArrays:
    """Validate one chunk's raw arrays (``indptr`` may start anywhere)."""
    indptr = np.asarray(indptr, dtype=np.int64)
    start = int(indptr[0])
    stop = int(indptr[-1])
    matrix = sp.csr_array(
        (data[start:stop], indices[start:stop], indptr - start),
        shape=(indptr.shape[0] - 1, n_cols),
    )
    return as_csr(matrix, name=what)


class MatrixSource(CsrSource):
    """A matrix in memory, validated once, cut into chunks of about ``chunk_nnz`` entries."""

    def __init__(self, matrix: object, chunk_nnz: int = CHUNK_NNZ) -> None:
        self.csr = matrix if isinstance(matrix, CsrArrays) else as_csr(matrix, name="docs")
        self.n_cols = self.csr.n_cols
        self.chunk_nnz = max(1, int(chunk_nnz))

    def chunks(self) -> Iterator[CsrArrays]:
        c = self.csr
        if c.nnz <= self.chunk_nnz:
            yield c
            return
        cuts = np.searchsorted(c.indptr, np.arange(0, c.nnz, self.chunk_nnz), side="right")
        bounds = np.unique(np.concatenate([[0], np.maximum(cuts - 1, 0), [c.n_rows]]))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            s, e = int(c.indptr[a]), int(c.indptr[b])
            yield CsrArrays(
                indptr=c.indptr[a : b + 1] - s,
                indices=c.indices[s:e],
                data=c.data[s:e],
                n_rows=int(b - a),
                n_cols=c.n_cols,
            )


class ParquetSource(CsrSource):
    """Parquet shards (``indices`` list<int32>, ``values`` list<float32>), read by row
    groups; other columns are ignored. ``n_cols``: the vector dimension."""

    def __init__(self, paths: Sequence[str | os.PathLike], n_cols: int) -> None:
        import pyarrow.parquet as pq

        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("no shard files given")
        if int(n_cols) <= 0:
            raise ValueError(f"dim must be positive, got {n_cols}")
        self.n_cols = int(n_cols)
        self._pq = pq
        for path in self.paths:
            try:
                schema = pq.read_schema(path)
            except (OSError, ValueError) as exc:
                raise ValueError(f"{path} is not a readable Parquet file: {exc}") from None
            missing = {"indices", "values"} - set(schema.names)
            if missing:
                raise ValueError(f"{path} has no column(s) {sorted(missing)}")

    def chunks(self) -> Iterator[CsrArrays]:
        for path in self.paths:
            try:
                reader = self._pq.ParquetFile(path)
                for group in range(reader.num_row_groups):
                    table = reader.read_row_group(group, columns=["indices", "values"])
                    yield self._to_chunk(table, path)
            except (OSError, ValueError) as exc:
                if isinstance(exc, ValueError) and str(exc).startswith(str(path)):
                    raise
                raise ValueError(f"{path}: damaged shard ({exc})") from None

    def _to_chunk(self, table, path: Path) -> CsrArrays:
        indices = table.column("indices").combine_chunks()
        values = table.column("values").combine_chunks()
        if indices.null_count or values.null_count:
            raise ValueError(f"{path}: a row has no vector (null indices or values)")
        offsets = indices.offsets.to_numpy()
        if not np.array_equal(offsets, values.offsets.to_numpy()):
            raise ValueError(f"{path}: a row's indices and values differ in length")
        flat_i = indices.values.to_numpy(zero_copy_only=False)
        flat_v = values.values.to_numpy(zero_copy_only=False)
        return _chunk(offsets, flat_i, flat_v, self.n_cols, f"{path}")

    def describe(self) -> str:
        return f"{len(self.paths)} Parquet shard(s)"


class BigAnnSource(CsrSource):
    """A big-ann ``.csr`` file (:mod:`index.bigann`), read in chunks of rows by plain file
    reads, so that no page of the file stays in the process's memory."""

    def __init__(self, path: str | os.PathLike, chunk_nnz: int = CHUNK_NNZ) -> None:
        self.file = read_csr(path, check_indices=False)  # every chunk is validated
        self.n_cols = self.file.n_cols
        self.chunk_nnz = max(1, int(chunk_nnz))

    def chunks(self) -> Iterator[CsrArrays]:
        f = self.file
        a = 0
        while a < f.n_rows:
            target = int(f.indptr[a]) + self.chunk_nnz
            b = int(np.searchsorted(f.indptr, target, side="right")) - 1
            b = min(f.n_rows, max(b, a + 1))
            yield as_csr(f.rows(a, b), name=str(f.path))
            a = b

    def describe(self) -> str:
        return f"{self.file.path.name} (big-ann .csr)"
