"""Readers of precomputed sparse vectors (uniCOIL, DeepImpact, SPLADE run elsewhere, ...).

Each yields :class:`app.jobs.corpus.Document` records whose ``vector`` is set and whose
``text`` is empty: a file that carries vectors is indexed with exactly those vectors and is
never re-encoded.

- JSONL with a ``vector`` object: Anserini's JsonVectorCollection (``id``, ``contents``,
  ``vector: {token: weight}``) and Seismic's jsonl (``id``, ``content``, ``vector``).
- big-ann-benchmarks ``.csr`` (NeurIPS'23 sparse track): little-endian int64 n_rows,
  n_cols, nnz, then int64 indptr[n_rows + 1], int32 indices[nnz], float32 data[nnz];
  ids are row numbers.
- Parquet with list columns ``indices`` and ``values`` (and optionally an id column; else
  ids are row numbers), e.g. ``lsr index``'s own shards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from app.jobs.corpus import ID_FIELDS, Corpus, Document, JsonLinesSource, open_text, pick
from app.jobs.errors import CorpusError

CSR_HEADER_BYTES = 24
PARQUET_BATCH_ROWS = 4096


def _weights(vector: Any, where: str) -> dict[str, float]:
    if not isinstance(vector, dict):
        raise CorpusError(f"{where}: 'vector' must be an object of token: weight")
    for token, weight in vector.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise CorpusError(f"{where}: the weight of {token[:40]!r} is not a number")
    return vector


class JsonVectorCorpus(JsonLinesSource):
    """JSONL lines ``{"id": ..., "vector": {token: weight}, ...}`` (text fields ignored)."""

    kind = "jsonl-vectors"
    has_vectors = True

    def __iter__(self) -> Iterator[Document]:
        for where, record in self.records():
            doc_id = pick(record, ID_FIELDS)
            if doc_id is None or str(doc_id) == "":
                raise CorpusError(f"{where}: no document id (one of {', '.join(ID_FIELDS)})")
            if "vector" not in record:
                raise CorpusError(f"{where}: no 'vector' (earlier lines carry vectors)")
            yield Document(str(doc_id), "", _weights(record["vector"], where))


def read_csr_header(path: Path) -> tuple[int, int, int]:
    """``(n_rows, n_cols, nnz)`` of a big-ann ``.csr`` file, checked against its size."""
    size = path.stat().st_size
    if size < CSR_HEADER_BYTES:
        raise CorpusError(f"{path}: too short for a .csr header ({size} bytes)")
    n_rows, n_cols, nnz = (int(x) for x in np.fromfile(path, dtype="<i8", count=3))
    if min(n_rows, n_cols, nnz) < 0:
        raise CorpusError(f"{path}: negative sizes in the .csr header")
    expected = CSR_HEADER_BYTES + 8 * (n_rows + 1) + 8 * nnz
    if size != expected:
        raise CorpusError(
            f"{path}: {size} bytes, but a .csr of {n_rows} rows and {nnz} non-zeros has "
            f"{expected} (truncated or not a big-ann .csr file)"
        )
    return n_rows, n_cols, nnz


class CsrFileCorpus(Corpus):
    """A big-ann ``.csr`` file, memory-mapped; document ids are row numbers (``"0"``...)."""

    kind = "csr"
    has_vectors = True

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.n_rows, self.dim, self.nnz = read_csr_header(Path(source))

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        path, n = Path(self.source), self.n_rows
        indptr = np.memmap(path, "<i8", "r", CSR_HEADER_BYTES, (n + 1,))
        at = CSR_HEADER_BYTES + 8 * (n + 1)
        if self.nnz == 0:
            return indptr, np.zeros(0, "<i4"), np.zeros(0, "<f4")
        indices = np.memmap(path, "<i4", "r", at, (self.nnz,))
        data = np.memmap(path, "<f4", "r", at + 4 * self.nnz, (self.nnz,))
        return indptr, indices, data

    def iter_from(self, start: int) -> Iterator[Document]:
        indptr, indices, data = self._arrays()
        if indptr[0] != 0 or indptr[-1] != self.nnz or np.any(np.diff(indptr) < 0):
            raise CorpusError(f"{self.source}: indptr is not a valid CSR row index")
        for row in range(start, self.n_rows):
            lo, hi = int(indptr[row]), int(indptr[row + 1])
            yield Document(str(row), "", (np.asarray(indices[lo:hi]), np.asarray(data[lo:hi])))

    def __iter__(self) -> Iterator[Document]:
        return self.iter_from(0)

    def count(self) -> int:
        return self.n_rows


class ParquetVectorCorpus(Corpus):
    """Parquet with list columns ``indices`` / ``values`` and an optional id column."""

    kind = "parquet-vectors"
    has_vectors = True

    def __iter__(self) -> Iterator[Document]:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(self.source)
        names = parquet.schema_arrow.names
        id_col = next((n for n in ID_FIELDS if n in names), None)
        columns = [c for c in (id_col, "indices", "values") if c]
        row = 0
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
            indices, values = batch.column("indices"), batch.column("values")
            starts = indices.offsets.to_numpy() - indices.offsets[0].as_py()
            same = np.array_equal(starts, values.offsets.to_numpy() - values.offsets[0].as_py())
            if indices.null_count or values.null_count or not same:
                raise CorpusError(
                    f"{self.source}: rows {row}..{row + batch.num_rows}:"
                    " indices and values must be lists of equal length"
                )
            cols, weights = indices.flatten().to_numpy(), values.flatten().to_numpy()
            ids = batch.column(id_col).to_pylist() if id_col else None
            for i in range(batch.num_rows):
                lo, hi = starts[i], starts[i + 1]
                doc_id = str(ids[i]) if ids is not None else str(row)
                yield Document(doc_id, "", (cols[lo:hi], weights[lo:hi]))
                row += 1

    def count(self) -> int:
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(self.source).metadata.num_rows)


def peek_json_vectors(path: Path) -> bool:
    """Whether the first record of a JSONL file carries a ``vector`` field."""
    try:
        with open_text(path) as handle:
            for line in islice(handle, 1000):
                if line.strip():
                    record = json.loads(line)
                    return isinstance(record, dict) and "vector" in record
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return False  # the text reader reports the problem with its line number
    return False
