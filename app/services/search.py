"""The search service: plain requests in (:mod:`app.services.models`), storage calls, plain
results out. The blocking methods run on a worker pool; :meth:`SearchService.search` and
:meth:`SearchService.explain` take a text query through the encoder's micro-batcher first."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from app.errors import InvalidInputError, NotFoundError
from app.services.collections import CollectionAdmin
from app.services.encoders import EncoderPool
from app.services.explain import segment_explanations
from app.services.hybrid import FieldSearch
from app.services.inputs import RequestInputs
from app.services.models import (
    BatchSearchResult,
    DeleteOutcome,
    DocumentInput,
    ExplainedHit,
    ExplainRequest,
    Explanation,
    IndexedWeights,
    SearchHit,
    SearchRequest,
    SearchResult,
    StoredDocument,
    TermContribution,
    Timings,
    WriteOutcome,
)
from app.services.params import search_plan
from app.services.pool import WorkerPool
from app.services.recall import RecallOptions
from app.services.registry import CollectionRegistry
from app.services.sampler import RecallMonitor
from app.settings import Settings
from app.storage.collection import Collection
from app.storage.fanout import Hit
from app.storage.filters import MetadataFilter
from app.storage.vectors import SparseVector, rows_from_csr


class SearchService(CollectionAdmin):
    """Everything the routes need: blocking methods (routes run them on ``write_pool``) and
    the two searches that start on the event loop (their Numba work runs on ``search_pool``)."""

    def __init__(
        self,
        settings: Settings,
        registry: CollectionRegistry,
        encoders: EncoderPool,
        *,
        search_pool: WorkerPool,
        write_pool: WorkerPool,
        recall: RecallMonitor | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.encoders = encoders
        self.inputs = RequestInputs(settings, encoders)
        self.fields = FieldSearch(self.inputs)
        self.search_pool = search_pool
        self.write_pool = write_pool
        # Live recall (its thread is started and stopped by the app's lifespan).
        self.recall = recall or RecallMonitor(RecallOptions.from_settings(settings))

    # -------------------------------------------------------------- writes
    def write_documents(
        self, name: str, docs: Sequence[DocumentInput], upsert: bool
    ) -> WriteOutcome:
        """Add (``upsert``: add or replace) documents; durable when this returns."""
        coll = self.registry.get(name)
        if coll.config.fields is not None:
            batch = self.fields.document_batch(coll, docs)
        else:
            batch = self.inputs.document_batch(coll, docs)
        coll.write(batch, upsert=upsert)
        if coll.needs_seal():
            self.registry.wake()
        return WriteOutcome(len(batch), batch.doc_ids)

    def delete_documents(self, name: str, ids: Sequence[str]) -> DeleteOutcome:
        """Delete by id; ids that do not exist come back in ``not_found``."""
        if len(ids) > self.settings.max_batch:
            raise InvalidInputError(
                f"{len(ids)} ids; the limit per request is {self.settings.max_batch}"
            )
        coll = self.registry.get(name)
        found = coll.delete(ids)
        found_set = set(found)
        missing = [d for d in dict.fromkeys(ids) if d not in found_set]
        return DeleteOutcome(len(found), found, missing)

    def get_document(self, name: str, doc_id: str) -> StoredDocument:
        """A document's stored vector and metadata (per field on a multi-field collection)."""
        coll = self.registry.get(name)
        if coll.config.fields is not None:
            return self.fields.stored_document(coll, doc_id)
        loc = coll.locate(doc_id)
        if loc is None:
            raise NotFoundError(f"document {doc_id[:200]!r} not found in {name!r}")
        seg, row = loc
        vec = coll.vector_of(seg, row)
        weights = IndexedWeights(vec.indices.tolist(), vec.values.tolist())
        return StoredDocument(doc_id, seg.metadata_at(row), weights)

    # -------------------------------------------------------------- search
    def _run(
        self, coll: Collection, reqs: Sequence[SearchRequest], vecs: Sequence[SparseVector]
    ) -> tuple[list[list[Hit]], list[bool], float]:
        """Group requests with the same k / filter / setting so each group is one call;
        returns the hits and whether each answer is certified, and the milliseconds spent in
        the index. Searches run at the collection's own setting are offered to live recall."""
        start = time.perf_counter()
        results: list[list[Hit]] = [[] for _ in reqs]
        certified = [False] * len(reqs)
        groups: dict[tuple, list[int]] = {}
        for i, req in enumerate(reqs):
            key = (
                req.k,
                repr(req.filter),
                req.query_cut,
                req.heap_factor,
                req.exact,
                req.recall,
                req.mode,
                req.certify,
            )
            groups.setdefault(key, []).append(i)
        live = self._recall_state(coll)
        for members in groups.values():
            req = reqs[members[0]]
            flt = MetadataFilter.parse(req.filter)
            plan, own = search_plan(req, "search", coll.config.query_params)
            generation = None
            if own:  # the collection's own setting: its controller's, or its defaults
                plan, generation = live.own_plan(coll.view, coll.config.query_params, plan.certify)
            found = coll.run_search([vecs[i] for i in members], req.k, plan, flt)
            for i, h, ok in zip(members, found.hits, found.certified, strict=True):
                results[i] = h
                certified[i] = ok
            live.count_answers(len(members), sum(found.certified))
            queries = [vecs[i] for i in members]
            self.recall.offer_answers(live, generation, found, queries, req.k, flt)
        return results, certified, _ms(start)

    async def _encode_text(self, name: str, req: SearchRequest, where: str) -> SparseVector | None:
        """A text query's vector, through the encoder's micro-batcher (None for a vector
        query); checked alone before it joins a batch."""
        if req.query is None:
            return None
        coll = self.registry.get(name)
        self.inputs.check_text_query(coll, req, where)
        encoder = coll.config.encoder
        batcher = self.encoders.loaded_batcher(encoder) or await self.write_pool.run(
            self.encoders.batcher, encoder
        )
        self.inputs.pins.check(coll, coll.layouts[0])  # the encoder is loaded by now
        return await batcher.encode(req.query)

    async def _encode_fields(
        self, name: str, req: SearchRequest, where: str
    ) -> tuple[dict[str, SparseVector], dict[str, float]]:
        """A text query through each learned field's micro-batcher (field-local columns)."""
        coll = self.registry.get(name)
        pre: dict[str, SparseVector] = {}
        times: dict[str, float] = {}
        for field_name in self.fields.learned_to_encode(coll, req, where):
            start = time.perf_counter()
            layout = next(f for f in coll.layouts if f.name == field_name)
            batcher = self.encoders.loaded_batcher(layout.encoder) or await self.write_pool.run(
                self.encoders.batcher, layout.encoder
            )
            self.inputs.pins.check(coll, layout)
            pre[field_name] = await batcher.encode(req.query)
            times[field_name] = _ms(start)
        return pre, times

    def _field_search(
        self,
        coll: Collection,
        req: SearchRequest,
        where: str = "search",
        pre: dict[str, SparseVector] | None = None,
        pre_ms: dict[str, float] | None = None,
    ) -> SearchResult:
        """A multi-field search, counted in the collection's searches (and certified)."""
        result = self.fields.search(coll, req, where, pre, pre_ms)
        self._recall_state(coll).count_answers(1, int(result.certified))
        return result

    async def search(self, name: str, req: SearchRequest) -> SearchResult:
        """Top-``k`` for one query: a text query is encoded through the micro-batcher (on the
        event loop), then the index is searched on the search pool."""
        if self.registry.get(name).config.fields is not None:
            pre, pre_ms = await self._encode_fields(name, req, "search")
            coll = self.registry.get(name)
            return await self.search_pool.run(self._field_search, coll, req, "search", pre, pre_ms)
        start = time.perf_counter()
        vec = await self._encode_text(name, req, "search")
        encode_ms = _ms(start) if vec is not None else 0.0
        return await self.search_pool.run(self.search_blocking, name, req, vec, encode_ms)

    def search_blocking(
        self,
        name: str,
        req: SearchRequest,
        vec: SparseVector | None = None,
        encode_ms: float = 0.0,
    ) -> SearchResult:
        """Top-``k`` for one query whose vector is given (or computed here); ``encode_ms``:
        the time its text took to encode before."""
        start = time.perf_counter()
        encoded_before = encode_ms if vec is not None else 0.0
        coll = self.registry.get(name)
        if coll.config.fields is not None:
            return self._field_search(coll, req)
        search_plan(req, "search")  # a bad combination of knobs fails before any work
        if vec is None:
            vec = self.inputs.query_vector(coll, req, "search")
            encode_ms = _ms(start)
        (hits,), (certified,), index_ms = self._run(coll, [req], [vec])
        fetched = time.perf_counter()
        out = [_hit(h) for h in hits]
        timings = Timings(encode=encode_ms, index=index_ms, fetch=_ms(fetched))
        return SearchResult(out, round(_ms(start) + encoded_before, 3), certified, timings)

    def batch_search(self, name: str, searches: Sequence[SearchRequest]) -> BatchSearchResult:
        """Several searches; their texts are encoded in one call."""
        start = time.perf_counter()
        if len(searches) > self.settings.max_batch:
            raise InvalidInputError(
                f"{len(searches)} searches; the limit is {self.settings.max_batch}"
            )
        coll = self.registry.get(name)
        if coll.config.fields is not None:
            results = [
                self._field_search(coll, s, f"searches[{i}]") for i, s in enumerate(searches)
            ]
            took = _ms(start)
            return BatchSearchResult(results, took, Timings(index=took))
        vecs: list[SparseVector | None] = [None] * len(searches)
        texts = []
        for i, s in enumerate(searches):
            search_plan(s, f"searches[{i}]")
            if s.query is not None and s.vector is None:
                if s.k > self.settings.max_k:
                    raise InvalidInputError(
                        f"searches[{i}].k: above the limit {self.settings.max_k}"
                    )
                self.inputs.check_one_field(coll, s, f"searches[{i}]")
                self.inputs.check_text(s.query, f"searches[{i}].query")
                self.inputs.encoder_for_text(coll, f"searches[{i}]")
                texts.append(i)
            else:
                vecs[i] = self.inputs.query_vector(coll, s, f"searches[{i}]")
        if texts:
            enc = self.inputs.encoder_for_text(coll, "searches")
            encoded = rows_from_csr(enc.encode_queries([searches[i].query for i in texts]))
            for i, v in zip(texts, encoded, strict=True):
                vecs[i] = v
        encode_ms = _ms(start)
        results, certified, index_ms = self._run(coll, searches, vecs)
        fetched = time.perf_counter()
        hits = [[_hit(h) for h in r] for r in results]
        timings = Timings(encode=encode_ms, index=index_ms, fetch=_ms(fetched))
        took = _ms(start)
        return BatchSearchResult(
            [SearchResult(h, took, c, timings) for h, c in zip(hits, certified, strict=True)],
            took,
            timings,
        )

    async def explain(self, name: str, req: ExplainRequest) -> Explanation:
        """Which terms matched, per hit (or per given id), as :meth:`search` finds them."""
        coll = self.registry.get(name)
        if coll.config.fields is not None:
            return await self.search_pool.run(self.fields.explain, coll, req)
        vec = await self._encode_text(name, req, "explain")
        return await self.search_pool.run(self.explain_blocking, name, req, vec)

    def explain_blocking(
        self, name: str, req: ExplainRequest, qvec: SparseVector | None = None
    ) -> Explanation:
        """Per hit (or per given id): the matched terms, their weights and contributions."""
        start = time.perf_counter()
        coll = self.registry.get(name)
        if coll.config.fields is not None:
            return self.fields.explain(coll, req)
        plan, own = search_plan(req, "explain", coll.config.query_params)
        flt = MetadataFilter.parse(req.filter)
        if qvec is None:
            qvec = self.inputs.query_vector(coll, req, "explain")
        if own:
            plan, _ = self._recall_state(coll).own_plan(coll.view, coll.config.query_params)
        if req.ids is not None:
            if len(req.ids) > self.settings.max_k:
                raise InvalidInputError(f"explain.ids: at most {self.settings.max_k} ids")
            located = []
            for doc_id in req.ids:
                loc = coll.locate(doc_id)
                if loc is None:
                    raise NotFoundError(f"document {doc_id[:200]!r} not found in {name!r}")
                located.append((doc_id, *loc))
        else:
            hits = coll.run_search([qvec], req.k, plan, flt).hits[0]
            located = [(h.doc_id, h.segment, h.row) for h in hits]
        query_terms = [
            self._term(coll, int(c), float(w), None)
            for c, w in sorted(zip(qvec.indices, qvec.values, strict=True), key=lambda t: -t[1])
        ]
        out = []
        for doc_id, seg, row in located:
            dvec = coll.vector_of(seg, row)
            common, qi, di = np.intersect1d(qvec.indices, dvec.indices, return_indices=True)
            terms = [
                self._term(coll, int(c), float(qvec.values[a]), float(dvec.values[b]))
                for c, a, b in zip(common, qi, di, strict=True)
            ]
            terms.sort(key=lambda t: -t.contribution)
            out.append(
                ExplainedHit(
                    id=doc_id,
                    score=float(sum(t.contribution for t in terms)),
                    metadata=seg.metadata_at(row),
                    terms=terms,
                )
            )
        segments = segment_explanations(coll.view, coll, qvec, req.k, plan, flt)
        return Explanation(out, query_terms, _ms(start), segments)

    def _term(self, coll: Collection, col: int, qw: float, dw: float | None) -> TermContribution:
        vocab = coll.vocabulary
        if vocab is not None:
            token = vocab[col] if 0 <= col < len(vocab) else str(col)
        else:
            token = self.encoders.feature_name(coll.config.encoder, col)
        return TermContribution(
            token=token,
            column=col,
            query_weight=qw,
            doc_weight=dw or 0.0,
            contribution=qw * (dw or 0.0),
        )


def _hit(h: Hit) -> SearchHit:
    return SearchHit(id=h.doc_id, score=h.score, metadata=h.segment.metadata_at(h.row))


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)
