"""Input checks and the one conversion at the boundary: any scipy sparse matrix -> CSR arrays.

Kernels assume valid input; everything a user can get wrong is caught here with a
``ValueError`` that says what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

# float16 forward index: larger weights would overflow to inf.
MAX_WEIGHT = 65504.0


@dataclass(frozen=True)
class CsrArrays:
    """A validated CSR matrix: sorted, de-duplicated, no explicit zeros.

    ``indptr`` int64 (n_rows + 1,), ``indices`` int32 (nnz,), ``data`` float32 (nnz,).
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n_rows: int
    n_cols: int

    @property
    def nnz(self) -> int:
        return int(self.data.shape[0])


def as_csr(matrix: object, *, name: str, allow_empty_rows: bool = True) -> CsrArrays:
    """Validate ``matrix`` (a scipy sparse array or matrix) and convert it once to CSR arrays.

    Raises ``ValueError`` for anything that is not a 2-D real sparse matrix with at least
    one row and one column, or whose values are NaN, infinite or negative, or whose column
    indices fall outside its shape.
    """
    if not sp.issparse(matrix):
        raise ValueError(
            f"{name} must be a scipy.sparse csr_array/csr_matrix, got {type(matrix).__name__}"
        )
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {matrix.shape}")
    n_rows, n_cols = (int(s) for s in matrix.shape)
    if n_rows == 0 or n_cols == 0:
        raise ValueError(f"{name} is empty (shape {matrix.shape}); need >= 1 row and column")
    if n_cols > np.iinfo(np.int32).max or n_rows > np.iinfo(np.int32).max:
        raise ValueError(f"{name} shape {matrix.shape} exceeds int32 row/column ids")
    dtype = matrix.dtype
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)):
        raise ValueError(f"{name} must have real float or integer values, got dtype {dtype}")
    csr = matrix.tocsr() if matrix.format != "csr" else matrix
    indptr = np.asarray(csr.indptr)
    indices = np.asarray(csr.indices)
    data = np.asarray(csr.data)
    if indptr.shape != (n_rows + 1,) or indptr[0] != 0 or indptr[-1] != data.shape[0]:
        raise ValueError(f"{name} has an inconsistent indptr array")
    if np.any(np.diff(indptr) < 0):
        raise ValueError(f"{name} has a decreasing indptr array")
    if indices.shape != data.shape:
        raise ValueError(f"{name} indices and data have different lengths")
    if data.size:
        if not np.all(np.isfinite(data)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if data.min() < 0:
            raise ValueError(f"{name} contains negative weights; inner-product LSR needs >= 0")
        if indices.min() < 0 or indices.max() >= n_cols:
            raise ValueError(
                f"{name} has a column index outside [0, {n_cols}): "
                f"min {int(indices.min())}, max {int(indices.max())}"
            )
    clean = sp.csr_array(
        (data.astype(np.float32, copy=False), indices, indptr), shape=(n_rows, n_cols)
    )
    if not clean.has_canonical_format:
        clean = clean.copy()
        clean.sum_duplicates()
    if clean.nnz and not np.all(clean.data != 0):
        clean = clean.copy()
        clean.eliminate_zeros()
    if not allow_empty_rows and clean.nnz == 0:
        raise ValueError(f"{name} has no non-zero entries")
    out_data = np.ascontiguousarray(clean.data, dtype=np.float32)
    if out_data.size and not np.all(np.isfinite(out_data)):
        raise ValueError(f"{name} has values that overflow float32")
    return CsrArrays(
        indptr=np.ascontiguousarray(clean.indptr, dtype=np.int64),
        indices=np.ascontiguousarray(clean.indices, dtype=np.int32),
        data=out_data,
        n_rows=n_rows,
        n_cols=n_cols,
    )


def check_queries(queries: CsrArrays, dim: int) -> None:
    """Queries may be narrower or wider than the index, but their terms must exist in it."""
    if queries.nnz and int(queries.indices.max()) >= dim:
        raise ValueError(
            f"queries use column {int(queries.indices.max())} but the index has dim {dim}"
        )


def check_k(k: object) -> int:
    """``k`` must be a positive integer."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) <= 0:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def as_1d(array: object, dtype: type, name: str) -> np.ndarray:
    """``array`` as a contiguous 1-D ``dtype`` array (no copy when it already is one)."""
    a = array if isinstance(array, np.ndarray) else np.asarray(array)
    if a.dtype != dtype:
        kind = a.dtype.kind
        if a.size and (kind not in "iu" if dtype is np.int32 else kind not in "iuf"):
            raise ValueError(
                f"{name} must be {'integers' if dtype is np.int32 else 'reals'}, "
                f"got dtype {a.dtype}"
            )
        if dtype is np.int32 and a.size and (a.min() < 0 or a.max() > np.iinfo(np.int32).max):
            raise ValueError(f"{name} must lie in [0, 2**31)")
        a = a.astype(dtype)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def as_sparse_vector(indices: object, values: object, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """One query given as term ids and weights -> ``(terms int32 ascending, weights float32
    > 0)``: duplicate terms summed, zero weights dropped; ``ValueError`` on bad input."""
    from index.kernels.exact import check_vector

    idx = as_1d(indices, np.int32, "indices")
    val = as_1d(values, np.float32, "values")
    if idx.shape != val.shape:
        raise ValueError("indices and values must have the same length")
    status = check_vector(idx, val, dim)
    if status == 2:
        raise ValueError(f"term ids must lie in [0, {dim})")
    if status == 3:
        raise ValueError("values must be finite and >= 0")
    if status == 1:
        order = np.argsort(idx, kind="stable")
        idx, val = idx[order], val[order]
        uniq, start = np.unique(idx, return_index=True)
        val = np.add.reduceat(val, start).astype(np.float32) if idx.size else val
        idx = uniq.astype(np.int32)
        keep = val != 0
        idx, val = idx[keep], val[keep]
    return idx, val


def check_recall(recall: object) -> float:
    """A recall target must be a number in (0, 1]."""
    try:
        target = float(recall)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"recall must be a number in (0, 1], got {recall!r}") from None
    if not 0.0 < target <= 1.0:
        raise ValueError(f"recall must be in (0, 1] (e.g. 0.95), got {recall!r}")
    return target
