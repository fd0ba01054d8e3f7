"""A multi-field collection's inputs: documents encoded by every field (texts only), the
fields a request selects and its fusion, checked, and each field's query vector (text
through the field's encoder, live BM25 weights, or a client's vector in one field)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.errors import InvalidInputError, NotFoundError
from app.services.fieldspec import checked_fusion, find_layout
from app.services.inputs import RequestInputs
from app.services.models import (
    DocumentInput,
    IndexedWeights,
    SearchRequest,
    StoredDocument,
)
from app.storage.batch import DocumentBatch
from app.storage.collection import Collection
from app.storage.fields import FieldLayout, split_columns
from app.storage.vectors import SparseVector, make_vector, rows_from_csr


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def layout_of(coll: Collection, name: str) -> FieldLayout:
    return find_layout(coll.layouts, name, coll.config.name)


class FieldInputs:
    """Writes and query vectors of multi-field collections, with the limits of
    :class:`app.services.inputs.RequestInputs`."""

    def __init__(self, inputs: RequestInputs) -> None:
        self.inputs = inputs
        self.encoders = inputs.encoders
        self.settings = inputs.settings

    # --------------------------------------------------------------- writes
    def document_batch(self, coll: Collection, docs: Sequence[DocumentInput]) -> DocumentBatch:
        """Every document checked alone (texts only: each field encodes it), then encoded."""
        for _, where, doc in self.inputs.checked_documents(docs):
            if doc.text is None or doc.vector is not None:
                raise InvalidInputError(
                    f"{where}: collection {coll.config.name!r} has several fields, each with "
                    "its own encoder: give 'text' (not 'vector')"
                )
            self.inputs.check_text(doc.text, where, allow_empty=True)
        return self.encode_texts(
            coll, [d.id for d in docs], [d.text or "" for d in docs], [d.metadata for d in docs]
        )

    def encode_texts(
        self,
        coll: Collection,
        ids: Sequence[str],
        texts: Sequence[str],
        metadata: Sequence[Any] | None = None,
    ) -> DocumentBatch:
        """The learned fields' vectors side by side, and the BM25 fields' analysed texts;
        every learned field's model must be its pinned one (else a 409, before any work)."""
        from encoders.bm25 import BM25Settings, analyse

        for layout in coll.layouts:
            if not layout.lexical:
                self.encoders.get(layout.encoder)
                self.inputs.pins.check(coll, layout)
        n = len(texts)
        parts = []
        terms: dict[str, list[list[str]]] = {}
        for layout in coll.layouts:
            if layout.lexical:
                analysed = analyse(list(texts), BM25Settings(k1=layout.k1, b=layout.b))
                terms[layout.name] = [list(t) for t in analysed]
                parts.append(sp.csr_array((n, layout.width), dtype=np.float32))
            else:
                enc = self.encoders.get(layout.encoder)
                parts.append(sp.csr_array(enc.encode_documents(list(texts)), dtype=np.float32))
        vectors = sp.csr_array(sp.hstack(parts, format="csr"))
        return DocumentBatch(*_quantised_of(ids, vectors, metadata), terms=terms or None)

    def stored_document(self, coll: Collection, doc_id: str) -> StoredDocument:
        loc = coll.locate(doc_id)
        if loc is None:
            raise NotFoundError(f"document {doc_id[:200]!r} not found in {coll.config.name!r}")
        seg, row = loc
        vec = coll.vector_of(seg, row)
        per_field = {}
        for layout in coll.layouts:
            cols, vals = split_columns(vec.indices, vec.values, layout)
            per_field[layout.name] = IndexedWeights(cols.tolist(), vals.tolist())
        whole = IndexedWeights(vec.indices.tolist(), vec.values.tolist())
        return StoredDocument(doc_id, seg.metadata_at(row), whole, per_field)

    # -------------------------------------------------------------- queries
    def selected(self, coll: Collection, req: SearchRequest, where: str) -> tuple[list[str], dict]:
        """The fields a request searches (its ``fields``, else those with a weight > 0 in
        its fusion) and the fusion, checked."""
        names = [f.name for f in coll.layouts if not f.rerank]
        if req.fields is not None:
            if not req.fields:
                raise InvalidInputError(f"{where}.fields: name at least one field")
            for name in req.fields:
                if layout_of(coll, name).rerank:
                    raise InvalidInputError(
                        f"{where}.fields: {name!r} is a re-rank field (a dense model's "
                        f'embeddings, never searched): ask for it with "rerank": {{"field": '
                        f'"{name}"}}'
                    )
            if len(set(req.fields)) != len(req.fields):
                raise InvalidInputError(f"{where}.fields: a field is named twice")
        if req.vector is not None and (req.fields is None or len(req.fields) != 1):
            raise InvalidInputError(
                f"{where}: a vector is in one field's columns: name that field, e.g. "
                f'"fields": ["{names[0]}"]'
            )
        if req.fusion is not None:
            fusion = checked_fusion(req.fusion, names, f"{where}.fusion")
        else:
            fusion = coll.config.fusion or checked_fusion(None, names)
        chosen = list(req.fields) if req.fields is not None else names
        if len(chosen) == 1:  # one field asked for: its own scores, no fusion
            return chosen, {**fusion, "raw": True}
        chosen = [n for n in chosen if fusion["weights"].get(n, 0.0) > 0]
        if not chosen:
            raise InvalidInputError(
                f"{where}: every field searched has fusion weight 0; give a weight > 0"
            )
        return chosen, fusion

    def query_vectors(
        self,
        coll: Collection,
        req: SearchRequest,
        names: Sequence[str],
        where: str,
        pre: dict[str, SparseVector] | None = None,
    ) -> tuple[dict[str, SparseVector], dict[str, float]]:
        """Each field's query vector (collection columns) and the ms it took; ``pre``: the
        learned fields' vectors already encoded (through their micro-batchers)."""
        self.inputs.check_k(req.k, where)
        if (req.query is None) == (req.vector is None):
            raise InvalidInputError(f"{where}: give exactly one of 'query' (text) or 'vector'")
        vecs: dict[str, SparseVector] = {}
        times: dict[str, float] = {}
        if req.vector is not None:
            start = time.perf_counter()
            layout = layout_of(coll, names[0])
            vecs[layout.name] = self.given_vector(coll, layout, req.vector, f"{where}.vector")
            times[layout.name] = _ms(start)
            return vecs, times
        self.inputs.check_text(req.query, f"{where}.query")
        for name in names:
            start = time.perf_counter()
            layout = layout_of(coll, name)
            if layout.lexical:
                vecs[name] = self.bm25_query(coll, layout, req.query)
            elif pre is not None and name in pre:
                vecs[name] = shifted(pre[name], layout)
            else:
                enc = self.encoders.get(layout.encoder)
                self.inputs.pins.check(coll, layout)
                local = rows_from_csr(enc.encode_queries([req.query]))[0]
                vecs[name] = shifted(local, layout)
            times[name] = _ms(start)
        return vecs, times

    @staticmethod
    def bm25_query(coll: Collection, layout: FieldLayout, text: str) -> SparseVector:
        """The query's terms weighed by their idf now (live document frequencies)."""
        from encoders.bm25 import BM25Settings, analyse

        terms = analyse([text], BM25Settings(k1=layout.k1, b=layout.b))[0]
        cols, weights = coll.lexical[layout.name].query(terms)
        return SparseVector(cols, weights)

    def given_vector(
        self, coll: Collection, layout: FieldLayout, raw: Any, where: str
    ) -> SparseVector:
        """A client's vector in one field's own columns (or its tokens), as collection columns."""
        limit = self.settings.max_vector_terms
        if isinstance(raw, IndexedWeights):
            if len(raw.indices) > limit:
                raise InvalidInputError(f"{where}: more than {limit} terms")
            local = make_vector(raw.indices, raw.values, layout.width, where)
        else:
            if len(raw) > limit:
                raise InvalidInputError(f"{where}: more than {limit} terms")
            if layout.lexical:
                token_map = coll.lexical[layout.name].columns
            else:
                token_map = self.encoders.token_map(layout.encoder)
            indices, values = [], []
            for token, weight in raw.items():
                col = token_map.get(token)
                if col is None:
                    raise InvalidInputError(f"{where}: unknown token {token[:40]!r}")
                indices.append(col)
                values.append(weight)
            local = make_vector(indices, values, layout.width, where)
        if layout.lexical and local.indices.size and local.indices[0] == 0:
            raise InvalidInputError(f"{where}: column 0 of a bm25 field holds lengths")
        if local.indices.size == 0:
            raise InvalidInputError(f"{where}: no non-zero weights")
        return shifted(local, layout)


def shifted(vec: SparseVector, layout: FieldLayout) -> SparseVector:
    """A field-local vector in the collection's columns."""
    return SparseVector((vec.indices + layout.offset).astype(np.int32), vec.values)


def _quantised_of(
    ids: Sequence[str], vectors: sp.csr_array, metadata: Sequence[Any] | None
) -> tuple[list[str], sp.csr_array, list[Any]]:
    batch = DocumentBatch.of(ids, vectors, metadata)
    return batch.doc_ids, batch.vectors, batch.metadata
