"""Sparse vectors at the service boundary: validation, packing into CSR, exact flat scoring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from app.errors import InvalidInputError

# The index keeps float16 forward vectors; larger weights would overflow.
MAX_WEIGHT = 65504.0
# Widest vector space accepted from files and clients (the index keeps per-term arrays).
MAX_DIM = 1 << 24


class VectorError(ValueError):
    """A given sparse vector is invalid; the message names the document and the problem."""


@dataclass(frozen=True)
class SparseVector:
    """One validated vector: ``indices`` int32 ascending unique, ``values`` float32 > 0."""

    indices: np.ndarray
    values: np.ndarray


def make_vector(
    indices: Sequence[int], values: Sequence[float], dim: int, where: str
) -> SparseVector:
    """Validate one ``{indices, values}`` pair; zeros are dropped, duplicates rejected."""
    if len(indices) != len(values):
        raise InvalidInputError(
            f"{where}: indices ({len(indices)}) and values ({len(values)}) differ in length"
        )
    outside = next((int(i) for i in indices if not 0 <= i < dim), None)
    if outside is not None:  # before numpy, which cannot hold ids past 2**63
        shown = str(outside) if len(str(outside)) <= 24 else f"{str(outside)[:20]}..."
        raise InvalidInputError(f"{where}: column {shown} is outside [0, {dim})")
    try:
        checked = checked_csr(
            np.array([0, len(indices)]), np.asarray(indices, np.int64), np.asarray(values), dim
        )
    except (VectorError, OverflowError) as exc:
        raise InvalidInputError(f"{where}: {exc}".replace(": row 0:", ":")) from exc
    return SparseVector(checked.indices, checked.data)


def checked_csr(
    indptr: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
    dim: int,
    doc_ids: Sequence[str] | None = None,
) -> sp.csr_array:
    """Validate rows of given vectors and return them canonical: (n, ``dim``) ``csr_array``
    with int32 sorted columns and float32 weights > 0 (zeros dropped).

    ``indices`` may be any integer array (int64 to catch ids past int32); ``values`` any
    float array. Raises :class:`VectorError` naming the first bad document (``doc_ids[row]``,
    else the row number): weights NaN, infinite, negative or above ``MAX_WEIGHT``; columns
    outside [0, dim); a column twice in one vector; an inconsistent ``indptr``.
    """
    indptr = np.asarray(indptr, np.int64)
    idx = np.asarray(indices)
    val = np.asarray(values)
    n = indptr.size - 1
    if n < 0 or indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != idx.size:
        raise VectorError("row offsets (indptr) are not a valid CSR layout")
    if idx.size != val.size:
        raise VectorError(f"{idx.size} column ids but {val.size} weights")
    if not np.issubdtype(idx.dtype, np.integer):
        raise VectorError(f"column ids must be integers, got {idx.dtype}")
    if not (np.issubdtype(val.dtype, np.floating) or np.issubdtype(val.dtype, np.integer)):
        raise VectorError(f"weights must be numbers, got {val.dtype}")
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))

    def name(pos: int) -> str:
        row = int(rows[pos])
        return f"document {doc_ids[row]!r}" if doc_ids is not None else f"row {row}"

    val = val.astype(np.float64, copy=False)
    checks = (
        (~np.isfinite(val), "a weight is {v} (weights must be finite)"),
        (val < 0, "a weight is {v} (weights must be >= 0)"),
        (val > MAX_WEIGHT, f"a weight is {{v}} (weights must be <= {MAX_WEIGHT:g})"),
    )
    for bad, message in checks:
        if bad.any():
            pos = int(np.argmax(bad))
            raise VectorError(f"{name(pos)}: {message.format(v=val[pos])}")
    out_of_range = (idx < 0) | (idx >= dim)
    if out_of_range.any():
        pos = int(np.argmax(out_of_range))
        raise VectorError(f"{name(pos)}: column {int(idx[pos])} is outside [0, {dim})")
    order = np.lexsort((idx, rows))
    idx, val, rows = idx[order], val[order], rows[order]
    dup = (idx[1:] == idx[:-1]) & (rows[1:] == rows[:-1])
    if dup.any():
        pos = int(np.argmax(dup))
        raise VectorError(f"{name(pos)}: column {int(idx[pos])} appears twice")
    val32 = val.astype(np.float32)
    keep = val32 > 0
    counts = np.bincount(rows[keep], minlength=n)
    out_indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=out_indptr[1:])
    out = sp.csr_array((val32[keep], idx[keep].astype(np.int32), out_indptr), shape=(n, dim))
    out.indices = out.indices.astype(np.int32, copy=False)  # scipy may widen to indptr's type
    return out


def rows_from_csr(matrix: sp.csr_array) -> list[SparseVector]:
    """Split an encoder's CSR output into per-row vectors (zeros dropped, columns sorted)."""
    csr = sp.csr_array(matrix)
    csr.sum_duplicates()
    csr.sort_indices()
    out = []
    for i in range(csr.shape[0]):
        lo, hi = csr.indptr[i], csr.indptr[i + 1]
        idx = np.asarray(csr.indices[lo:hi], np.int32)
        val = np.asarray(csr.data[lo:hi], np.float32)
        keep = val > 0
        out.append(SparseVector(idx[keep], val[keep]))
    return out


def pack(vectors: Sequence[SparseVector]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lengths int64 (n,), indices int32 (nnz,), values float32 (nnz,))``."""
    lengths = np.array([v.indices.size for v in vectors], dtype=np.int64)
    if not vectors:
        return lengths, np.zeros(0, np.int32), np.zeros(0, np.float32)
    return (
        lengths,
        np.concatenate([v.indices for v in vectors]).astype(np.int32, copy=False),
        np.concatenate([v.values for v in vectors]).astype(np.float32, copy=False),
    )


def to_csr(vectors: Sequence[SparseVector], dim: int) -> sp.csr_array:
    lengths, indices, values = pack(vectors)
    indptr = np.zeros(len(vectors) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return sp.csr_array((values, indices, indptr), shape=(len(vectors), dim))


def dense_queries(queries: Sequence[SparseVector], dim: int) -> np.ndarray:
    """``(dim, n_queries)`` float32, for one sparse-times-dense product over a flat segment."""
    out = np.zeros((dim, len(queries)), np.float32)
    for j, q in enumerate(queries):
        out[q.indices, j] = q.values
    return out


# Wider than this, a (dim, n_queries) dense query block is not worth filling.
DENSE_QUERY_DIM = 1 << 18


def score_rows(csr: sp.csr_array, queries: Sequence[SparseVector], dim: int) -> np.ndarray:
    """``(rows, n_queries)`` float32 inner products of every row of ``csr`` with each query:
    through a dense query block, or a sparse one when ``dim`` is wide (a multi-field
    collection's columns: a dense block would be megabytes per query)."""
    if dim <= DENSE_QUERY_DIM:
        return np.asarray(csr @ dense_queries(queries, dim))
    lengths, indices, values = pack(queries)
    indptr = np.zeros(len(queries) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    block = sp.csc_array((values, indices, indptr), shape=(dim, len(queries)))
    out = csr @ block
    return np.asarray(out.toarray() if sp.issparse(out) else out, np.float32)


def top_k_column(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` positive entries of ``scores`` (n,), best first; ties go to the lower row."""
    positive = np.flatnonzero(scores > 0)
    if positive.size > k:
        part = np.argpartition(-scores[positive], k - 1)[:k]
        positive = positive[part]
    vals = scores[positive]
    order = np.lexsort((positive, -vals))
    return positive[order].astype(np.int64), vals[order].astype(np.float32)
