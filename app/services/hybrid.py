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
from app.services.fieldspec import FUSION_DEPTH, checked_rerank, fusion_spec
from app.services.fusion import default_rerank_weight, fuse, min_max, rerank
from app.services.models import (
    ExplainedHit,
    ExplainRequest,
    Explanation,
    FieldContribution,
    RerankRequest,
    SearchHit,
    SearchRequest,
    SearchResult,
    TermContribution,
    Timings,
)
from app.services.params import search_plan
from app.storage.collection import Collection
from app.storage.fanout import Hit, search_view
from app.storage.fields import FieldLayout, split_columns
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


def rerank_depth(req: SearchRequest) -> int:
    """How many fused candidates a request's re-rank scores (0: none)."""
    return req.rerank.depth if isinstance(req.rerank, RerankRequest) else 0


def with_default_rerank(coll: Collection, req: SearchRequest) -> SearchRequest:
    """``req`` with the collection's default re-rank when it asks for none and searches by
    text (a vector search is not re-ranked by default: it has no text to embed); ``False``
    (none asked for, whatever the default) becomes None."""
    if req.rerank is False:
        return replace(req, rerank=None)
    default = coll.config.rerank
    if req.rerank is None and default is not None and req.query is not None:
        return replace(req, rerank=RerankRequest(**default))
    return req


def dense_part(vec: SparseVector, layout: FieldLayout) -> np.ndarray:
    """The dense embedding a re-rank field's columns hold in ``vec`` (collection columns):
    ``[max(x, 0), max(-x, 0)]`` back to ``x`` (:func:`encoders.dense.join_signs`); zeros
    for a document whose text was empty."""
    from encoders.dense import join_signs  # loaded with the re-rank field's encoder

    cols, vals = split_columns(vec.indices, vec.values, layout)
    stored = np.zeros(layout.width, np.float32)
    stored[cols] = vals
    return join_signs(stored)


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
        depth = max(depth, rerank_depth(req))
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
        req = with_default_rerank(coll, req)
        layout = self.rerank_field(coll, req, where)
        names, fusion = self.selected(coll, req, where)
        vecs, enc_times = self.query_vectors(coll, req, names, where, pre)
        enc_times = {**enc_times, **(pre_ms or {})}
        took_before = max((pre_ms or {}).values(), default=0.0)
        encode_ms = round(_ms(start) + took_before, 3)
        runs = self.run_fields(coll, req, vecs, names, fusion, where)
        index_start = time.perf_counter()
        top = self.fused(runs, fusion, max(req.k, rerank_depth(req)))
        fused_ms = _ms(index_start)
        per_field = {
            r.name: {"encode": enc_times.get(r.name, 0.0), "index": r.index_ms, "hits": len(r.hits)}
            for r in runs
        }
        if layout is not None:
            top, timing = self.reranked(coll, req, layout, top, names, where, pre)
            timing["encode"] = enc_times.get(layout.name, timing["encode"])  # via the batcher
            per_field[layout.name] = timing
            fused_ms += timing["rerank"]
        top = top[: req.k]
        fetched = time.perf_counter()
        hits = [SearchHit(id=h.doc_id, score=s, metadata=h.segment.metadata_at(h.row))
                for h, s in top]  # fmt: skip
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
        layout = self.rerank_field(coll, with_default_rerank(coll, req), where)
        names, _ = self.selected(coll, req, where)
        learned = [n for n in names if not layout_of(coll, n).lexical]
        return learned + ([layout.name] if layout is not None else [])

    # --------------------------------------------------------------- re-rank
    def rerank_field(self, coll: Collection, req: SearchRequest, where: str) -> FieldLayout | None:
        """The re-rank field a request asks for (``req`` with the collection's default
        applied, :func:`with_default_rerank`), checked; None: no re-rank."""
        if req.rerank is None:
            return None
        here = f"{where}.rerank"
        if not isinstance(req.rerank, RerankRequest):
            raise InvalidInputError(f"{here}: an object (field, depth, weight) or false")
        if req.query is None:
            raise InvalidInputError(
                f"{here}: re-ranking scores the query text with the dense model; give 'query'"
            )
        return checked_rerank(req.rerank, coll.layouts, self.settings.max_k, here, coll.config.name)

    def reranked(
        self,
        coll: Collection,
        req: SearchRequest,
        layout: FieldLayout,
        top: list[tuple[Hit, float]],
        names: Sequence[str],
        where: str,
        pre: dict[str, SparseVector] | None,
    ) -> tuple[list[tuple[Hit, float]], dict[str, float]]:
        """The fused candidates ``top`` re-scored ``(1 - w) minmax(fused) + w minmax(cosine)``,
        the cosine of the query's and each document's dense embedding (stored in
        ``layout``'s columns); and the re-rank field's timings."""
        assert req.rerank is not None
        vecs, times = self.query_vectors(coll, req, [layout.name], where, pre)
        start = time.perf_counter()
        query = dense_part(vecs[layout.name], layout)
        cosines = [
            float(dense_part(coll.vector_of(h.segment, h.row), layout) @ query) for h, _ in top
        ]
        weight = req.rerank.weight
        if weight is None:
            weight = default_rerank_weight(tuple(layout_of(coll, n).encoder for n in names))
        ranked = rerank([h.doc_id for h, _ in top], [s for _, s in top], cosines, float(weight))
        by_id = {h.doc_id: h for h, _ in top}
        timing = {
            "encode": times.get(layout.name, 0.0),
            "rerank": _ms(start),
            "candidates": len(top),
            "weight": float(weight),
        }
        return [(by_id[doc_id], score) for doc_id, score in ranked], timing

    # --------------------------------------------------------------- explain
    def explain(self, coll: Collection, req: ExplainRequest) -> Explanation:
        """Per hit (or per given id): each field's rank, score, share of the fused score and
        matched terms."""
        start = time.perf_counter()
        search_plan(req, "explain")
        if req.rerank not in (None, False):
            raise InvalidInputError(
                "explain.rerank: explanations are of the searched fields' scores; search with "
                "'rerank' for the re-ranked order"
            )
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
