"""Per-field state of a collection (a mixin of :class:`app.storage.collection.Collection`):
the live BM25 fields' vocabularies (loaded, learnt from WAL records, written at checkpoints)
and statistics (recounted from the live stored vectors at open), the weighing of a batch's
BM25 terms under the write lock, and views of the collection through one field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from app.storage.batch import DocumentBatch, quantised
from app.storage.checked import DamageError, read_checked_json, write_checked_json
from app.storage.fanout import View
from app.storage.fields import FieldSegment


class FieldState:
    """Field methods of :class:`app.storage.collection.Collection` (its state: ``lexical``,
    the view, the path and ``_field_views``)."""

    def _vocab_file(self, field_name: str) -> Path:
        return self.path / f"lexical-{field_name}.json"

    def _load_vocabularies(self) -> None:
        for name, lex in self.lexical.items():
            path = self._vocab_file(name)
            if path.exists():
                lex.learn(read_checked_json(path, path.name)["terms"])

    def save_vocabularies(self) -> None:
        """Write each live BM25 field's vocabulary (at a checkpoint, before the WAL files
        whose records carried its new terms are removed)."""
        for name, lex in self.lexical.items():
            write_checked_json(self._vocab_file(name), {"terms": lex.vocabulary()})

    def _recount(self) -> None:
        """Recompute the live BM25 statistics from the live stored vectors, then follow
        every add and delete."""
        for lex in self.lexical.values():
            lex.reset_statistics()
        view = self.view
        for seg, n_rows, live in zip(view.segments, view.n_rows, view.live, strict=True):
            if not self.lexical or n_rows == 0:
                continue
            csr = seg.csr(n_rows)
            if live is not None:
                csr = csr[np.flatnonzero(live[:n_rows])]
            for lex in self.lexical.values():
                lex.add_rows(csr)
        self._counting = True

    def _weigh(self, batch: DocumentBatch) -> DocumentBatch:
        """Add the live BM25 fields' weights to a batch (under the write lock: they use the
        statistics of this moment); the new terms ride along to the WAL record."""
        vectors = batch.vectors
        vocab = {}
        for name, docs in (batch.terms or {}).items():
            lex = self.lexical[name]
            local, new_terms = lex.weigh(docs)
            shifted = sp.csr_array(
                (local.data, local.indices + lex.layout.offset, local.indptr), shape=vectors.shape
            )
            vectors = vectors + shifted
            if new_terms:
                vocab[name] = new_terms
        return DocumentBatch(batch.doc_ids, quantised(vectors), batch.metadata, vocab=vocab or None)

    def field_view(self, field_name: str) -> View:
        """The current view with each segment seen through one field (its index)."""
        view = self.view
        cached = self._field_views.get(field_name)
        if cached is not None and cached[0] is view:
            return cached[1]
        segs = tuple(FieldSegment(seg, field_name) for seg in view.segments)
        out = View(segs, view.n_rows, view.live)
        self._field_views[field_name] = (view, out)
        return out

    def _learn(self, vocab: dict[str, list[list]] | None) -> None:
        for name, pairs in (vocab or {}).items():
            lex = self.lexical.get(name)
            if lex is None:
                raise DamageError(f"a WAL record has terms of {name!r}, not a BM25 field here")
            lex.learn(pairs)
