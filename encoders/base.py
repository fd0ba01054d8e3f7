"""The encoder interface and the helpers every encoder shares (input checks, CSR assembly)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from encoders.errors import EncoderError


class SparseEncoder(ABC):
    """Text -> sparse vectors: one ``csr_array`` row per text (float32 values, int32 columns).

    Bad input: an empty (or whitespace-only) string gives an empty row; ``None`` or a
    non-string raises ``ValueError``; long texts are truncated to the encoder's
    ``max_length`` tokens; an empty list gives a ``(0, dim)`` matrix.
    """

    @property
    @abstractmethod
    def dim(self) -> int:
        """Number of columns (vocabulary size for SPLADE, latent width for CSR)."""

    @property
    @abstractmethod
    def feature_names(self) -> list[str]:
        """Column -> human-readable feature (word piece, or latent id)."""

    @abstractmethod
    def encode_documents(self, texts: Sequence[str], **kwargs: object) -> sp.csr_array:
        """Encode documents; returns shape ``(len(texts), dim)``."""

    @abstractmethod
    def encode_queries(self, texts: Sequence[str], **kwargs: object) -> sp.csr_array:
        """Encode queries; returns shape ``(len(texts), dim)``."""


def validate_texts(texts: Sequence[str]) -> list[str]:
    """A list of strings, or ``ValueError`` naming the first bad item."""
    if isinstance(texts, str):
        raise EncoderError("expected a list of texts, got a single string (wrap it in a list)")
    if texts is None:
        raise EncoderError("expected a list of texts, got None")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise EncoderError(f"text {i} is {type(text).__name__}, expected str")
    return out


def empty_csr(n_rows: int, dim: int) -> sp.csr_array:
    """An all-zero ``(n_rows, dim)`` matrix with the interchange dtypes."""
    return sp.csr_array(
        (np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(n_rows + 1, np.int32)),
        shape=(n_rows, dim),
    )


def csr_from_parts(
    row_counts: np.ndarray, cols: np.ndarray, values: np.ndarray, dim: int
) -> sp.csr_array:
    """Build a CSR matrix from per-row counts and row-major (col, value) pairs.

    ``row_counts``: (n,) int; ``cols``: (nnz,) int, ascending within a row; ``values``: (nnz,).
    """
    indptr = np.zeros(len(row_counts) + 1, np.int64)
    np.cumsum(row_counts, out=indptr[1:])
    idx_dtype = np.int32 if indptr[-1] < np.iinfo(np.int32).max else np.int64
    return sp.csr_array(
        (
            np.asarray(values, np.float32),
            np.asarray(cols, np.int32),
            indptr.astype(idx_dtype, copy=False),
        ),
        shape=(len(row_counts), dim),
    )


def take_rows(matrix: sp.csr_array, source: np.ndarray) -> sp.csr_array:
    """Row ``i`` of the result is row ``source[i]`` of ``matrix``, with the interchange dtypes."""
    out = sp.csr_array(matrix[source])
    out.indices = out.indices.astype(np.int32, copy=False)
    out.data = out.data.astype(np.float32, copy=False)
    return out


def prune_dense(values: np.ndarray, top_k: int | None, threshold: float) -> np.ndarray:
    """Zero entries ``<= threshold`` and all but the ``top_k`` largest of each row (in place)."""
    if threshold > 0:
        values[values <= threshold] = 0
    if top_k is not None and top_k < values.shape[1]:
        cut = np.argpartition(-values, top_k, axis=1)[:, top_k:]
        np.put_along_axis(values, cut, 0, axis=1)
    return values
