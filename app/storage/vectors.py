"""Sparse vectors at the service boundary: validation, packing into CSR, exact flat scoring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from app.errors import InvalidInputError

# The index keeps float16 forward vectors; larger weights would overflow.
MAX_WEIGHT = 65504.0


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
    idx = np.asarray(indices, dtype=np.int64)
    val = np.asarray(values, dtype=np.float64)
    if idx.size:
        if not np.isfinite(val).all():
            raise InvalidInputError(f"{where}: weights must be finite numbers")
        if idx.min() < 0 or idx.max() >= dim:
            raise InvalidInputError(
                f"{where}: indices must lie in [0, {dim}); got {idx.min()}..{idx.max()}"
            )
        if val.min() < 0:
            raise InvalidInputError(f"{where}: weights must be >= 0 (learned sparse vectors)")
        if val.max() > MAX_WEIGHT:
            raise InvalidInputError(f"{where}: weights must be <= {MAX_WEIGHT:g}")
    if idx.size > 1 and not (idx[1:] > idx[:-1]).all():
        order = np.argsort(idx, kind="stable")
        idx, val = idx[order], val[order]
        if np.any(idx[1:] == idx[:-1]):
            raise InvalidInputError(f"{where}: duplicate indices")
    keep = val > 0
    if not keep.all():
        idx, val = idx[keep], val[keep]
    return SparseVector(idx.astype(np.int32), val.astype(np.float32))


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


def top_k_column(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` positive entries of ``scores`` (n,), best first; ties go to the lower row."""
    positive = np.flatnonzero(scores > 0)
    if positive.size > k:
        part = np.argpartition(-scores[positive], k - 1)[:k]
        positive = positive[part]
    vals = scores[positive]
    order = np.lexsort((positive, -vals))
    return positive[order].astype(np.int64), vals[order].astype(np.float32)
