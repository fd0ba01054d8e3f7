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

import numpy as np

from app.errors import InvalidInputError, NotFoundError
from app.services.explain import segment_explanations
from app.services.fieldinputs import FieldInputs, layout_of
from app.services.fieldspec import FUSION_DEPTH, fusion_spec
from app.services.fusion import fuse, min_max
from app.services.models import (
    ExplainedHit,
    ExplainRequest,
    Explanation,
    FieldContribution,
    SearchHit,
    SearchRequest,
    SearchResult,
    TermContribution,
    Timings,
)
from app.services.params import search_plan
from app.storage.collection import Collection
from app.storage.fanout import Hit, search_view
from app.storage.fields import FieldLayout
from app.storage.filters import MetadataFilter
from app.storage.vectors import SparseVector


@dataclass
class FieldRun:
    """One field's answer to one query: hits best first, certified or not, time in ms."""

    name: str
    hits: list[Hit]
    certified: bool
    index_ms: float


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


class FieldSearch(FieldInputs):
    """The multi-field part of :class:`app.services.search.SearchService`: search, fusion and
    explanations (inputs: :class:`app.services.fieldinputs.FieldInputs`)."""

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
