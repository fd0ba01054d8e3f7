"""The one shape documents take on their way to disk: ids, one CSR row each, metadata.

Built once per write (from an encoder's CSR output, or from given vectors checked by
:func:`app.storage.vectors.checked_csr`), quantised once to the float16 steps the index keeps,
then logged to the WAL from its arrays and appended to the mutable segment as they are.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp


def quantised(matrix: sp.csr_array) -> sp.csr_array:
    """Weights rounded to float16 steps, as the sealed index stores them (so a document scores
    the same before and after its segment is sealed), zeros dropped, columns sorted; int32
    indices, float32 values, int64 ``indptr``."""
    csr = sp.csr_array(matrix)
    csr.sum_duplicates()
    values = np.asarray(csr.data, np.float32).astype(np.float16).astype(np.float32)
    keep = values > 0
    rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))[keep]
    indptr = np.zeros(csr.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=csr.shape[0]), out=indptr[1:])
    out = sp.csr_array(
        (values[keep], np.asarray(csr.indices[keep], np.int32), indptr), shape=csr.shape
    )
    out.indices = out.indices.astype(np.int32, copy=False)
    return out


def metadata_line(metadata: Any) -> str:
    """The stored JSON text of one document's metadata (``null`` when none)."""
    return json.dumps(metadata, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class DocumentBatch:
    """``doc_ids[i]`` has vector row i of ``vectors`` (n, dim) and ``metadata[i]``.

    ``terms``: for a collection with live BM25 fields, each such field's analysed texts
    (one term list per document), not yet weighed: the collection weighs them under its
    write lock, with its statistics of that moment (:mod:`app.storage.lexical`), and adds
    them to ``vectors``; ``vocab`` then holds the new terms that the write introduces per
    field (``[column, term]`` pairs), logged in the same WAL record."""

    doc_ids: list[str]
    vectors: sp.csr_array
    metadata: list[Any]
    terms: dict[str, list[list[str]]] | None = None
    vocab: dict[str, list[list]] | None = None

    def __post_init__(self) -> None:
        if not (len(self.doc_ids) == self.vectors.shape[0] == len(self.metadata)):
            raise ValueError(
                f"{len(self.doc_ids)} ids, {self.vectors.shape[0]} vectors and "
                f"{len(self.metadata)} metadata values"
            )

    @classmethod
    def of(
        cls, doc_ids: Sequence[str], vectors: sp.csr_array, metadata: Sequence[Any] | None = None
    ) -> DocumentBatch:
        """A batch with ``vectors`` quantised (metadata None when not given)."""
        meta = list(metadata) if metadata is not None else [None] * len(doc_ids)
        return cls(list(doc_ids), quantised(vectors), meta)

    @property
    def lengths(self) -> np.ndarray:
        """Non-zeros of each row, int64 (n,)."""
        return np.diff(self.vectors.indptr).astype(np.int64)

    def __len__(self) -> int:
        return len(self.doc_ids)
