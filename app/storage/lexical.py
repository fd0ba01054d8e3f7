"""A live BM25 field: its vocabulary, its corpus statistics, and how it weighs texts.

BM25's score is ``sum_t qtf_t * idf_t * tf_td / (tf_td + k1 (1 - b + b dl_d / avgdl))`` with
Lucene's ``idf_t = log(1 + (N - df_t + 0.5) / (df_t + 0.5))`` (the same as
:mod:`encoders.bm25`). In a collection that takes writes, ``N``, ``df`` and ``avgdl`` move.
The split (Qdrant's "idf modifier" does the same):

- the document side stores the saturated term frequency ``tf / (tf + k1 (1 - b + b dl /
  avgdl))``, which depends only on the document and on ``avgdl``;
- the query side carries ``qtf * idf``, computed at query time from the live document
  frequencies and the live ``N`` (deletes included), so idf is exact at every moment.

**What is approximate: avgdl.** A document is weighed once, when it is written, with the
collection's average length at that moment (its own batch included), and keeps that weight.
A collection written in one batch is weighed exactly as :class:`encoders.bm25.BM25Encoder`
fitted on it; documents written while the collection was small (or before many deletes) are
normalised by an avgdl that has since moved. With b = 0.4 a 10% error in avgdl changes a
term's weight by at most ~4%. Weights are also rounded to float16 steps (relative 2^-11), as
every stored vector is.

The statistics are derived data: column ``LENGTH_COLUMN`` of the field holds each document's
analysed length, so ``N``, ``df`` and the total length are recomputed from the live stored
vectors when the collection opens, and kept up to date on every add and delete. They are
therefore exactly as durable, and as checked, as the documents themselves. The vocabulary
(stemmed term -> column) is the one piece of state of its own: new terms travel in the same
WAL record as the documents that introduce them (one fsync, so a write and its terms are
logged together or not at all), and a checkpoint writes the whole vocabulary
(``lexical-<field>.json``, checksummed) before the WAL files that carried it are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from app.storage.checked import DamageError
from app.storage.fields import LENGTH_COLUMN, FieldLayout

# Longest length stored exactly enough: float16's largest finite value.
MAX_LENGTH = 65504.0


class LiveBM25:
    """Vocabulary and live statistics of one lexical field (the caller holds the
    collection's write lock for every change)."""

    def __init__(self, layout: FieldLayout) -> None:
        self.layout = layout
        self.terms: dict[int, str] = {}  # field-local column -> term
        self.columns: dict[str, int] = {}  # term -> field-local column
        self.next_column = LENGTH_COLUMN + 1
        self.df = np.zeros(layout.width, np.int64)
        self.n_docs = 0
        self.total_length = 0.0
        self.dropped_terms = 0  # term occurrences refused because the field was full

    # ------------------------------------------------------------ vocabulary
    def learn(self, pairs: Iterable[Sequence]) -> None:
        """Add ``(column, term)`` pairs read from the vocabulary file or a WAL record; a
        column or term already known with another partner is damage."""
        for col, term in pairs:
            col = int(col)
            if not LENGTH_COLUMN < col < self.layout.width or not isinstance(term, str):
                raise DamageError(f"field {self.layout.name!r}: vocabulary entry {col} is invalid")
            known = self.terms.get(col)
            if known is not None and known != term:
                raise DamageError(
                    f"field {self.layout.name!r}: column {col} is {known!r} and {term!r}"
                )
            self.terms[col] = term
            self.columns.setdefault(term, col)
            self.next_column = max(self.next_column, col + 1)

    def vocabulary(self) -> list[list]:
        return [[col, term] for col, term in sorted(self.terms.items())]

    # ------------------------------------------------------------ documents
    def weigh(self, docs: Sequence[Sequence[str]]) -> tuple[sp.csr_array, list[list]]:
        """Analysed texts -> ``(vectors (n, width) in field-local columns, new terms)``.

        New terms get the next free columns (in order of first appearance); they are not
        part of the vocabulary until :meth:`learn` is called with them, after the write is
        logged (a failed write leaves no trace). Terms past the field's width are dropped
        (counted in ``dropped_terms``) but count in the document's length."""
        pending: dict[str, int] = {}
        nxt = self.next_column
        lengths = np.fromiter((len(d) for d in docs), np.float64, len(docs))
        avgdl = (self.total_length + lengths.sum()) / max(self.n_docs + len(docs), 1)
        avgdl = max(avgdl, 1e-9)
        k1, b = self.layout.k1, self.layout.b
        indptr = [0]
        cols_out: list[np.ndarray] = []
        vals_out: list[np.ndarray] = []
        for doc, dl in zip(docs, lengths, strict=True):
            counts: dict[int, int] = {}
            for term in doc:
                col = self.columns.get(term)
                if col is None:
                    col = pending.get(term)
                if col is None:
                    if nxt >= self.layout.width:
                        self.dropped_terms += 1
                        continue
                    col = pending[term] = nxt
                    nxt += 1
                counts[col] = counts.get(col, 0) + 1
            cols = np.fromiter(counts.keys(), np.int64, len(counts))
            tf = np.fromiter(counts.values(), np.float64, len(counts))
            weights = tf / (tf + k1 * (1 - b + b * dl / avgdl))
            if dl > 0:
                cols = np.append(cols, LENGTH_COLUMN)
                weights = np.append(weights, min(dl, MAX_LENGTH))
            order = np.argsort(cols)
            cols_out.append(cols[order])
            vals_out.append(weights[order])
            indptr.append(indptr[-1] + cols.size)
        indices = np.concatenate([np.zeros(0, np.int64), *cols_out]).astype(np.int32)
        values = np.concatenate([np.zeros(0), *vals_out]).astype(np.float32)
        out = sp.csr_array(
            (values, indices, np.asarray(indptr, np.int64)), shape=(len(docs), self.layout.width)
        )
        return out, [[col, term] for term, col in pending.items()]

    def add_rows(self, csr: sp.csr_array) -> None:
        """Count the rows of ``csr`` (collection columns) as live documents."""
        lo, hi = self.layout.offset, self.layout.end
        cols = np.asarray(csr.indices)
        vals = np.asarray(csr.data)
        in_field = (cols > lo + LENGTH_COLUMN) & (cols < hi)
        np.add.at(self.df, cols[in_field] - lo, 1)
        self.total_length += float(vals[cols == lo + LENGTH_COLUMN].sum())
        self.n_docs += int(csr.shape[0])
        if in_field.any():
            self.next_column = max(self.next_column, int(cols[in_field].max()) - lo + 1)

    def remove_row(self, indices: np.ndarray, values: np.ndarray) -> None:
        """A live document (collection columns) is deleted or replaced."""
        lo, hi = self.layout.offset, self.layout.end
        in_field = (indices > lo + LENGTH_COLUMN) & (indices < hi)
        np.subtract.at(self.df, indices[in_field] - lo, 1)
        self.total_length -= float(values[indices == lo + LENGTH_COLUMN].sum())
        self.n_docs -= 1

    def reset_statistics(self) -> None:
        self.df[:] = 0
        self.n_docs = 0
        self.total_length = 0.0

    # --------------------------------------------------------------- queries
    def idf(self, columns: np.ndarray) -> np.ndarray:
        """Lucene's idf of field-local ``columns`` from the live statistics, float64."""
        df = self.df[columns].astype(np.float64)
        return np.log1p((self.n_docs - df + 0.5) / (df + 0.5))

    def query(self, terms: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """An analysed query -> ``(collection columns int32 ascending, qtf * idf float32)``;
        terms outside the vocabulary, or in no live document, match nothing and are left out."""
        counts: dict[int, int] = {}
        for term in terms:
            col = self.columns.get(term)
            if col is not None and self.df[col] > 0:
                counts[col] = counts.get(col, 0) + 1
        cols = np.array(sorted(counts), np.int64)
        qtf = np.array([counts[c] for c in cols.tolist()], np.float64)
        weights = qtf * self.idf(cols) if cols.size else qtf
        return (cols + self.layout.offset).astype(np.int32), weights.astype(np.float32)

    def avgdl(self) -> float:
        return self.total_length / self.n_docs if self.n_docs else 0.0

    def snapshot(self) -> dict:
        return {
            "documents": self.n_docs,
            "avgdl": round(self.avgdl(), 4),
            "terms": len(self.terms),
            "capacity": self.layout.width - 1,
            "dropped_terms": self.dropped_terms,
        }
