"""Sparse fields of one collection: several encoders' vectors for the same documents.

A multi-field collection stores each document once: one row, one id, one metadata value, one
tombstone, and one vector whose columns are the fields' columns side by side (field ``f``
owns columns ``[offset_f, offset_f + width_f)``). So the WAL record of a write, the mutable
segment, the sealed segment's checksummed vector files, tombstones, merges and ``lsr repair``
are exactly those of a single-encoder collection: a write is in every field or in none, and a
delete leaves every field at once. Only the index is per field: a sealed segment builds one
Seismic index per field over that field's entries alone (``index-<field>/``), with the
field's own build parameters, and a search on field ``f`` runs ``f``'s query vector (non-zero
only in ``f``'s columns) against ``f``'s index, or scores rows exactly (the other fields'
columns meet nothing in the query, so the inner product is the field's own).

A re-rank field (``rerank``: a dense model's embeddings) is stored the same way but has no
index: it only re-scores candidates.

A single-encoder collection is the one-field case: field ``""``, offset 0, its index in
``index/`` as before, so its files and behaviour are unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.storage.filters import MetadataFilter
from app.storage.segment import Segment

FIELD_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
LEXICAL_ENCODER = "bm25"
# The first column of a lexical (live BM25) field holds each document's analysed length, so
# that the field's statistics can be derived from the stored vectors alone; it is never
# indexed and never in a query.
LENGTH_COLUMN = 0


@dataclass(frozen=True)
class FieldLayout:
    """One field: its encoder, its columns ``[offset, offset + width)`` of the collection's
    vectors, and its own build / query parameters. ``lexical``: a live BM25 field (its
    first column is the length column, its vocabulary grows with the documents)."""

    name: str
    encoder: str
    offset: int
    width: int
    index_params: dict[str, Any] = field(default_factory=dict)
    query_params: dict[str, Any] = field(default_factory=dict)
    k1: float = 0.9
    b: float = 0.4
    # A re-rank field (a dense model's embeddings, encoders.dense): stored in every row like
    # the others, never indexed, never searched on its own; it re-scores the candidates the
    # searched fields found (app.services.rerank).
    rerank: bool = False

    @property
    def lexical(self) -> bool:
        return self.encoder == LEXICAL_ENCODER

    @property
    def end(self) -> int:
        return self.offset + self.width

    @property
    def indexed_from(self) -> int:
        """The first column of the field that its index holds (past the length column)."""
        return self.offset + (1 if self.lexical else 0)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "encoder": self.encoder,
            "offset": self.offset,
            "width": self.width,
            "index_params": dict(self.index_params),
            "query_params": dict(self.query_params),
        }
        if self.lexical:
            out.update(k1=self.k1, b=self.b)
        if self.rerank:
            out["rerank"] = True
        return out

    @classmethod
    def from_dict(cls, name: str, body: dict[str, Any]) -> FieldLayout:
        return cls(
            name=name,
            encoder=body["encoder"],
            offset=int(body["offset"]),
            width=int(body["width"]),
            index_params=dict(body.get("index_params", {})),
            query_params=dict(body.get("query_params", {})),
            k1=float(body.get("k1", 0.9)),
            b=float(body.get("b", 0.4)),
            rerank=bool(body.get("rerank", False)),
        )


def field_part(csr: sp.csr_array, layout: FieldLayout) -> sp.csr_array:
    """The entries of ``csr`` in the field's indexed columns, same shape (global columns):
    what the field's index is built from."""
    keep = (csr.indices >= layout.indexed_from) & (csr.indices < layout.end)
    rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))[keep]
    indptr = np.zeros(csr.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=csr.shape[0]), out=indptr[1:])
    out = sp.csr_array(
        (np.asarray(csr.data[keep], np.float32), np.asarray(csr.indices[keep], np.int32), indptr),
        shape=csr.shape,
    )
    out.indices = out.indices.astype(np.int32, copy=False)
    return out


def compact_columns(part: sp.csr_array) -> tuple[sp.csr_array, np.ndarray]:
    """A field's part of a segment over only the columns it uses: ``(csr (rows, n_cols),
    columns int32 ascending)``, where column ``j`` of the result is ``columns[j]`` of the
    collection. The index is built on this, so its per-term arrays grow with the terms the
    segment holds, not with the field's width (a BM25 field may have a million columns)."""
    columns = np.unique(np.asarray(part.indices, np.int32))
    local = np.searchsorted(columns, part.indices).astype(np.int32)
    out = sp.csr_array(
        (np.asarray(part.data, np.float32), local, np.asarray(part.indptr, np.int64)),
        shape=(part.shape[0], max(int(columns.size), 1)),
    )
    out.indices = out.indices.astype(np.int32, copy=False)
    return out, columns


class ColumnMappedIndex:
    """A field index built on :func:`compact_columns`: queries come in the collection's
    columns and are mapped to the index's (terms the segment does not hold are dropped);
    everything else is the index's own."""

    def __init__(self, index: Any, columns: np.ndarray) -> None:
        self._index = index
        self.columns = columns

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)

    def _mapped(self, indices: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos = np.searchsorted(self.columns, indices)
        pos = np.minimum(pos, max(self.columns.size - 1, 0))
        keep = self.columns[pos] == indices if self.columns.size else np.zeros(0, bool)
        return pos[keep].astype(np.int32), np.asarray(values, np.float32)[keep]

    def search_vector(self, indices: np.ndarray, values: np.ndarray, **kwargs: Any) -> Any:
        local, vals = self._mapped(indices, values)
        if local.size == 0:  # no term of the query is in this segment: nothing can score
            k = int(kwargs.get("k", 10))
            empty = (np.full(k, -1, np.int64), np.zeros(k, np.float32))
            return (*empty, True) if kwargs.get("certify") else empty
        return self._index.search_vector(local, vals, **kwargs)

    def explain(self, indices: np.ndarray, values: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        local, vals = self._mapped(indices, values)
        return self._index.explain(local, vals, *args, **kwargs)


def split_columns(
    indices: np.ndarray, values: np.ndarray, layout: FieldLayout
) -> tuple[np.ndarray, np.ndarray]:
    """The part of one vector in the field's columns, as field-local columns (the length
    column of a lexical field left out)."""
    keep = (indices >= layout.indexed_from) & (indices < layout.end)
    return (indices[keep] - layout.offset).astype(np.int32), values[keep]


class FieldSegment(Segment):
    """A segment seen through one field: the same rows, ids, metadata and vectors, with the
    field's index. Hits keep it as their segment (for ids and metadata); ``base`` is the
    segment itself."""

    def __init__(self, base: Segment, field_name: str) -> None:
        self.base = base
        self.field_name = field_name
        self.seg_id = base.seg_id
        self.dim = base.dim
        self.doc_ids = base.doc_ids
        self.index = getattr(base, "indexes", {}).get(field_name)

    @property
    def n_rows(self) -> int:  # type: ignore[override]
        return self.base.n_rows

    def csr(self, n_rows: int | None = None) -> sp.csr_array:
        return self.base.csr(n_rows)

    def metadata_at(self, row: int) -> dict[str, Any] | None:
        return self.base.metadata_at(row)

    def metadata_line(self, row: int) -> str:
        return self.base.metadata_line(row)

    def filter_mask(self, flt: MetadataFilter, n_rows: int) -> np.ndarray:
        return self.base.filter_mask(flt, n_rows)


def check_field_names(names: Sequence[str]) -> None:
    for name in names:
        if not FIELD_NAME_RE.fullmatch(name):
            raise ValueError(
                f"invalid field name {name[:40]!r}: use 1-32 letters, digits, '_' or '-', "
                "starting with a letter or digit"
            )
