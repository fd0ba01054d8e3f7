"""Writes, searches and explanations on a multi-field collection.

A document's text goes through every field's encoder (a live BM25 field only analyses it
here: the collection weighs the terms under its write lock, :mod:`app.storage.lexical`), and
the fields' vectors are stored side by side as one row (:mod:`app.storage.fields`). A search
encodes its text once per field, searches each field (its own index, its own query
parameters, ``max(k, 100)`` candidates deep), and fuses the rankings
(:mod:`app.services.fusion`) with the request's fusion or the collection's default; a search
restricted to one field answers with that field's own scores.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.errors import InvalidInputError, NotFoundError
from app.services.explain import segment_explanations
from app.services.fieldspec import FUSION_DEPTH, checked_fusion, fusion_spec
from app.services.fusion import fuse, min_max
from app.services.inputs import RequestInputs, check_metadata
from app.services.models import (
    DocumentInput,
    ExplainedHit,
    ExplainRequest,
    Explanation,
    FieldContribution,
    IndexedWeights,
    SearchHit,
    SearchRequest,
    SearchResult,
    StoredDocument,
    TermContribution,
    Timings,
)
from app.services.params import search_plan
from app.storage.batch import DocumentBatch
from app.storage.collection import Collection
from app.storage.fanout import Hit, search_view
from app.storage.fields import FieldLayout, split_columns
from app.storage.filters import MetadataFilter
from app.storage.vectors import SparseVector, make_vector, rows_from_csr


@dataclass
class FieldRun:
    """One field's answer to one query: hits best first, certified or not, time in ms."""

    name: str
    hits: list[Hit]
    certified: bool
    index_ms: float


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def layout_of(coll: Collection, name: str) -> FieldLayout:
    for layout in coll.layouts:
        if layout.name == name:
            return layout
    raise InvalidInputError(
        f"no field {name[:40]!r} in collection {coll.config.name!r}; its fields are "
        f"{[f.name for f in coll.layouts]}"
    )


class FieldSearch:
    """The multi-field part of :class:`app.services.search.SearchService`."""

    def __init__(self, inputs: RequestInputs) -> None:
        self.inputs = inputs
        self.encoders = inputs.encoders
        self.settings = inputs.settings

    # --------------------------------------------------------------- writes
    def document_batch(self, coll: Collection, docs: Sequence[DocumentInput]) -> DocumentBatch:
        """Every document checked alone (texts only: each field encodes it), then encoded."""
        if len(docs) > self.settings.max_batch:
            raise InvalidInputError(
                f"{len(docs)} documents; the limit per request is {self.settings.max_batch}"
            )
        seen: set[str] = set()
        for i, doc in enumerate(docs):
            where = f"documents[{i}]"
            if len(doc.id) > self.settings.max_id_length:
                raise InvalidInputError(
                    f"{where}.id: longer than {self.settings.max_id_length} chars"
                )
            if doc.id in seen:
                raise InvalidInputError(
                    f"{where}.id: {doc.id[:80]!r} appears twice in this request"
                )
            seen.add(doc.id)
            if doc.metadata is not None:
                check_metadata(doc.metadata, f"{where}.metadata")
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
        """The learned fields' vectors side by side, and the BM25 fields' analysed texts."""
        from encoders.bm25 import BM25Settings, analyse

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
        names = [f.name for f in coll.layouts]
        if req.fields is not None:
            if not req.fields:
                raise InvalidInputError(f"{where}.fields: name at least one field")
            for name in req.fields:
                layout_of(coll, name)
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

    # --------------------------------------------------------------- search
    def run_fields(
        self,
        coll: Collection,
        req: SearchRequest,
        vecs: dict[str, SparseVector],
        names: Sequence[str],
        fusion: dict,
        where: str,
    ) -> list[FieldRun]:
        """Each field searched on its own index, ``max(k, 100)`` deep when fused."""
        flt = MetadataFilter.parse(req.filter)
        depth = req.k if fusion.get("raw") else max(req.k, FUSION_DEPTH)
        runs = []
        for name in names:
            layout = layout_of(coll, name)
            plan, _ = search_plan(req, where, layout.query_params)
            start = time.perf_counter()
            vec = vecs[name]
            if vec.indices.size == 0:  # no term of the query is in this field
                runs.append(FieldRun(name, [], True, _ms(start)))
                continue
            found = search_view(coll.field_view(name), [vec], depth, plan, flt)
            runs.append(FieldRun(name, found.hits[0], found.certified[0], _ms(start)))
        return runs

    @staticmethod
    def fused(runs: Sequence[FieldRun], fusion: dict, k: int) -> list[tuple[Hit, float]]:
        """The top ``k`` as (hit, score): one field's own scores, or the fused ones."""
        if fusion.get("raw"):
            return [(h, h.score) for h in runs[0].hits[:k]]
        spec = fusion_spec(fusion, [r.name for r in runs])
        ranked = fuse([([h.doc_id for h in r.hits], [h.score for h in r.hits]) for r in runs],
                      spec, depth=k)  # fmt: skip
        by_id: dict[str, Hit] = {}
        for run in runs:
            for h in run.hits:
                by_id.setdefault(h.doc_id, h)
        return [(by_id[doc_id], score) for doc_id, score in ranked]

    def search(
        self,
        coll: Collection,
        req: SearchRequest,
        where: str = "search",
        pre: dict[str, SparseVector] | None = None,
        pre_ms: dict[str, float] | None = None,
    ) -> SearchResult:
        """Top-``k`` on the fields the request selects, fused; ``pre`` / ``pre_ms``: learned
        fields' query vectors encoded before (field-local columns) and their times."""
        start = time.perf_counter()
        search_plan(req, where)
        names, fusion = self.selected(coll, req, where)
        vecs, enc_times = self.query_vectors(coll, req, names, where, pre)
        enc_times = {**enc_times, **(pre_ms or {})}
        took_before = max((pre_ms or {}).values(), default=0.0)
        encode_ms = round(_ms(start) + took_before, 3)
        runs = self.run_fields(coll, req, vecs, names, fusion, where)
        index_start = time.perf_counter()
        top = self.fused(runs, fusion, req.k)
        fused_ms = _ms(index_start)
        fetched = time.perf_counter()
        hits = [SearchHit(id=h.doc_id, score=s, metadata=h.segment.metadata_at(h.row))
                for h, s in top]  # fmt: skip
        per_field = {
            r.name: {"encode": enc_times.get(r.name, 0.0), "index": r.index_ms, "hits": len(r.hits)}
            for r in runs
        }
        timings = Timings(
            encode=encode_ms,
            index=round(sum(r.index_ms for r in runs) + fused_ms, 3),
            fetch=_ms(fetched),
            fields=per_field,
        )
        certified = all(r.certified for r in runs)
        return SearchResult(hits, round(_ms(start) + took_before, 3), certified, timings)

    def learned_to_encode(self, coll: Collection, req: SearchRequest, where: str) -> list[str]:
        """The learned fields whose encoders a text request needs (checked first, so that a
        bad request fails before it is queued for an encoder)."""
        if req.query is None:
            return []
        self.inputs.check_k(req.k, where)
        if req.vector is not None:
            raise InvalidInputError(f"{where}: give exactly one of 'query' (text) or 'vector'")
        self.inputs.check_text(req.query, f"{where}.query")
        search_plan(req, where)
        names, _ = self.selected(coll, req, where)
        return [n for n in names if not layout_of(coll, n).lexical]

    # --------------------------------------------------------------- explain
    def explain(self, coll: Collection, req: ExplainRequest) -> Explanation:
        """Per hit (or per given id): each field's rank, score, share of the fused score and
        matched terms."""
        start = time.perf_counter()
        search_plan(req, "explain")
        names, fusion = self.selected(coll, req, "explain")
        vecs, _ = self.query_vectors(coll, req, names, "explain")
        runs = self.run_fields(coll, req, vecs, names, fusion, "explain")
        shares = contributions(runs, fusion)
        if req.ids is not None:
            if len(req.ids) > self.settings.max_k:
                raise InvalidInputError(f"explain.ids: at most {self.settings.max_k} ids")
            located = []
            for doc_id in req.ids:
                loc = coll.locate(doc_id)
                if loc is None:
                    raise NotFoundError(
                        f"document {doc_id[:200]!r} not found in {coll.config.name!r}"
                    )
                total = sum(shares[r.name].get(doc_id, (None, None, 0.0))[2] for r in runs)
                located.append((doc_id, *loc, total))
        else:
            located = [(h.doc_id, h.segment, h.row, s) for h, s in self.fused(runs, fusion, req.k)]
        out = []
        for doc_id, seg, row, score in located:
            dvec = coll.vector_of(seg, row)
            per_field = {}
            for run in runs:
                layout = layout_of(coll, run.name)
                terms = self._terms(coll, layout, vecs[run.name], dvec)
                rank, fscore, share = shares[run.name].get(doc_id, (None, None, 0.0))
                if fscore is None:  # not in the field's list: its score there all the same
                    fscore = float(sum(t.contribution for t in terms))
                per_field[run.name] = FieldContribution(
                    rank=rank, score=fscore, contribution=share, terms=terms
                )
            out.append(
                ExplainedHit(
                    id=doc_id,
                    score=float(score),
                    metadata=seg.metadata_at(row),
                    terms=[],
                    fields=per_field,
                )
            )
        query_terms = {
            name: [
                self._token(coll, layout_of(coll, name), int(c), float(w), None)
                for c, w in sorted(zip(vec.indices, vec.values, strict=True), key=lambda t: -t[1])
            ]
            for name, vec in vecs.items()
        }
        flat = [t for terms in query_terms.values() for t in terms]
        flt = MetadataFilter.parse(req.filter)
        depth = req.k if fusion.get("raw") else max(req.k, FUSION_DEPTH)
        segments = []
        for run in runs:
            if vecs[run.name].indices.size == 0:
                continue
            plan, _ = search_plan(req, "explain", layout_of(coll, run.name).query_params)
            view = coll.field_view(run.name)
            for part in segment_explanations(view, coll, vecs[run.name], depth, plan, flt):
                segments.append(replace(part, field=run.name))
        return Explanation(out, flat, _ms(start), segments, fields=query_terms)

    def _terms(
        self, coll: Collection, layout: FieldLayout, qvec: SparseVector, dvec: SparseVector
    ) -> list[TermContribution]:
        common, qi, di = np.intersect1d(qvec.indices, dvec.indices, return_indices=True)
        terms = [
            self._token(coll, layout, int(c), float(qvec.values[a]), float(dvec.values[b]))
            for c, a, b in zip(common, qi, di, strict=True)
        ]
        terms.sort(key=lambda t: -t.contribution)
        return terms

    def _token(
        self, coll: Collection, layout: FieldLayout, col: int, qw: float, dw: float | None
    ) -> TermContribution:
        local = col - layout.offset
        if layout.lexical:
            token = coll.lexical[layout.name].terms.get(local, str(local))
        else:
            token = self.encoders.feature_name(layout.encoder, local)
        return TermContribution(
            token=token,
            column=local,
            query_weight=qw,
            doc_weight=dw or 0.0,
            contribution=qw * (dw or 0.0),
        )


def contributions(
    runs: Sequence[FieldRun], fusion: dict
) -> dict[str, dict[str, tuple[int, float, float]]]:
    """Per field, per doc id in its list: (rank from 1, its score, its share of the fused
    score), as :func:`app.services.fusion.fuse` adds them up."""
    out: dict[str, dict[str, tuple[int, float, float]]] = {}
    for run in runs:
        scores = [h.score for h in run.hits]
        if fusion.get("raw"):
            shares = scores
        elif fusion["method"] == "rrf":
            w = float(fusion["weights"].get(run.name, 0.0))
            shares = [w / (fusion["rrf_k"] + rank) for rank in range(1, len(scores) + 1)]
        else:
            w = float(fusion["weights"].get(run.name, 0.0))
            shares = [w * n for n in min_max(scores)]
        out[run.name] = {
            h.doc_id: (rank, h.score, share)
            for rank, (h, share) in enumerate(zip(run.hits, shares, strict=True), start=1)
        }
    return out


def shifted(vec: SparseVector, layout: FieldLayout) -> SparseVector:
    """A field-local vector in the collection's columns."""
    return SparseVector((vec.indices + layout.offset).astype(np.int32), vec.values)


def _quantised_of(
    ids: Sequence[str], vectors: sp.csr_array, metadata: Sequence[Any] | None
) -> tuple[list[str], sp.csr_array, list[Any]]:
    batch = DocumentBatch.of(ids, vectors, metadata)
    return batch.doc_ids, batch.vectors, batch.metadata
