"""The search service: request models in, storage calls, response models out (all blocking;
routes run these on a worker pool)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from app.api import schemas
from app.errors import InvalidInputError, NotFoundError
from app.services.encoders import NO_ENCODER, EncoderPool
from app.services.params import checked_query_params
from app.services.pool import WorkerPool
from app.services.registry import CollectionRegistry
from app.settings import Settings
from app.storage.batch import DocumentBatch
from app.storage.collection import Collection, CollectionConfig
from app.storage.filters import MetadataFilter
from app.storage.vectors import SparseVector, make_vector, rows_from_csr, to_csr


class SearchService:
    """Everything the routes need, in plain blocking methods."""

    def __init__(
        self, settings: Settings, registry: CollectionRegistry, encoders: EncoderPool
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.encoders = encoders

    # ---------------------------------------------------------- collections
    def create_collection(self, req: schemas.CollectionCreate) -> schemas.CollectionInfo:
        self.encoders.check_allowed(req.encoder)
        self.encoders.check_usable(req.encoder)
        enc = self.encoders.get(req.encoder)
        if enc is None:
            if req.dim is None:
                raise InvalidInputError('a collection with encoder "none" needs "dim"')
            dim = req.dim
        else:
            if req.dim is not None and req.dim != enc.dim:
                raise InvalidInputError(f"dim {req.dim} does not match encoder dim {enc.dim}")
            dim = int(enc.dim)
        self._check_params(req.index_params, req.query_params)
        config = CollectionConfig(
            name=req.name,
            encoder=req.encoder,
            dim=dim,
            index_params=dict(req.index_params),
            query_params=dict(req.query_params),
            created_at=time.time(),
        )
        return self._info(self.registry.create(config))

    @staticmethod
    def _check_params(index_params: dict[str, Any], query_params: dict[str, Any]) -> None:
        from index import BuildParams

        try:
            BuildParams(**index_params)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"index_params: {exc}") from exc
        checked_query_params(query_params)

    def _info(self, coll: Collection) -> schemas.CollectionInfo:
        return schemas.CollectionInfo(**coll.config.to_dict(), documents=len(coll.id_map))

    def describe(self, name: str) -> schemas.CollectionInfo:
        return self._info(self.registry.get(name))

    def list_collections(self) -> schemas.CollectionList:
        out = []
        for name in self.registry.names():
            try:
                out.append(self._info(self.registry.get(name)))
            except NotFoundError:
                continue
        damaged = [
            schemas.DamagedCollection(name=n, damage=d)
            for n, d in sorted(self.registry.damaged.items())
        ]
        return schemas.CollectionList(collections=out, damaged=damaged)

    def seal(self, name: str) -> dict[str, Any]:
        """Seal the mutable segment now (normally done in the background)."""
        coll = self.registry.get(name)
        return {"sealed": coll.seal(), **coll.stats()}

    def merge(self, name: str) -> dict[str, Any]:
        """Merge every sealed segment into one, dropping tombstoned rows."""
        coll = self.registry.get(name)
        segments = coll.sealed_segments()
        return {"merged": coll.merge(segments) if segments else False, **coll.stats()}

    def drop_collection(self, name: str) -> None:
        self.registry.drop(name)

    async def encode_text(
        self, name: str, req: schemas.SearchIn, where: str, pool: WorkerPool
    ) -> SparseVector | None:
        """A text query's vector, through the encoder's micro-batcher (None for a vector
        query); checked alone before it joins a batch."""
        if req.query is None:
            return None
        coll = self.registry.get(name)
        self.check_text_query(coll, req, where)
        encoder = coll.config.encoder
        batcher = self.encoders.loaded_batcher(encoder) or await pool.run(
            self.encoders.batcher, encoder
        )
        return await batcher.encode(req.query)

    def health(self) -> dict[str, Any]:
        """Collections open, and those that cannot serve: their encoder cannot run here."""
        unavailable = {}
        for name in self.registry.names():
            encoder = self.registry.get(name).config.encoder
            if encoder in self.encoders.unavailable:
                unavailable[name] = self.encoders.unavailable[encoder]
        return {
            "collections": len(self.registry.names()),
            "collections_unavailable": unavailable,
            "collections_damaged": dict(self.registry.damaged),
        }

    def stats(self, name: str) -> dict[str, Any]:
        coll = self.registry.get(name)
        return {
            "name": name,
            "encoder": coll.config.encoder,
            "dim": coll.config.dim,
            **coll.stats(),
        }

    # -------------------------------------------------------------- vectors
    def to_vector(self, coll: Collection, raw: schemas.VectorIn, where: str) -> SparseVector:
        dim = coll.config.dim
        if isinstance(raw, schemas.IndicesValues):
            if len(raw.indices) > self.settings.max_vector_terms:
                raise InvalidInputError(
                    f"{where}: more than {self.settings.max_vector_terms} terms"
                )
            return make_vector(raw.indices, raw.values, dim, where)
        if len(raw) > self.settings.max_vector_terms:
            raise InvalidInputError(f"{where}: more than {self.settings.max_vector_terms} terms")
        indices, values = [], []
        token_map = coll.token_columns
        if coll.config.encoder != NO_ENCODER:
            token_map = self.encoders.token_map(coll.config.encoder)
        for token, weight in raw.items():
            col = token_map.get(token) if token_map else None
            if col is None and not token_map and token.isascii() and token.isdigit():
                col = int(token)
            if col is None:
                if token_map:
                    raise InvalidInputError(f"{where}: unknown token {token[:40]!r}")
                raise InvalidInputError(f"{where}: token {token[:40]!r} is not a column number")
            indices.append(col)
            values.append(weight)
        return make_vector(indices, values, dim, where)

    def _check_text(self, text: str, where: str, *, allow_empty: bool = False) -> None:
        """Length limits; an empty query is a mistake, an empty document is a document
        (stored, found by id, matching nothing)."""
        if not allow_empty and not text.strip():
            raise InvalidInputError(f"{where}: text is empty")
        if len(text) > self.settings.max_text_length:
            raise InvalidInputError(
                f"{where}: text has {len(text)} characters; limit {self.settings.max_text_length}"
            )

    def _encoder_for_text(self, coll: Collection, where: str) -> Any:
        enc = self.encoders.get(coll.config.encoder)
        if enc is None:
            raise InvalidInputError(
                f"{where}: collection {coll.config.name!r} has no encoder; send a vector instead"
            )
        return enc

    # -------------------------------------------------------------- writes
    def document_batch(self, coll: Collection, docs: Sequence[schemas.DocumentIn]) -> DocumentBatch:
        """Validate every document alone, encode the texts in one call and keep the encoder's
        CSR as it is (given vectors join it row by row); quantised once, in the batch."""
        if len(docs) > self.settings.max_batch:
            raise InvalidInputError(
                f"{len(docs)} documents; the limit per request is {self.settings.max_batch}"
            )
        seen: set[str] = set()
        given: dict[int, SparseVector] = {}
        texts: list[str] = []
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
                _check_metadata(doc.metadata, f"{where}.metadata")
            if (doc.text is None) == (doc.vector is None):
                raise InvalidInputError(f"{where}: give exactly one of 'text' or 'vector'")
            if doc.text is not None:
                self._check_text(doc.text, where, allow_empty=True)
                self._encoder_for_text(coll, where)
                texts.append(doc.text)
            else:
                given[i] = self.to_vector(coll, doc.vector, f"{where}.vector")
        encoded = None
        if texts:
            encoded = self.encoders.get(coll.config.encoder).encode_documents(texts)
        if encoded is not None and not given:
            vectors = encoded
        else:
            text_rows = iter(rows_from_csr(encoded) if encoded is not None else [])
            rows = [given[i] if i in given else next(text_rows) for i in range(len(docs))]
            vectors = to_csr(rows, coll.config.dim)
        return DocumentBatch.of([d.id for d in docs], vectors, [d.metadata for d in docs])

    def write_documents(
        self, name: str, req: schemas.DocumentsIn, upsert: bool
    ) -> schemas.WriteResult:
        coll = self.registry.get(name)
        batch = self.document_batch(coll, req.documents)
        coll.write(batch, upsert=upsert)
        if coll.needs_seal():
            self.registry.wake()
        return schemas.WriteResult(written=len(batch), ids=batch.doc_ids)

    def delete_documents(self, name: str, req: schemas.DeleteIn) -> schemas.DeleteResult:
        if len(req.ids) > self.settings.max_batch:
            raise InvalidInputError(
                f"{len(req.ids)} ids; the limit per request is {self.settings.max_batch}"
            )
        coll = self.registry.get(name)
        found = coll.delete(req.ids)
        found_set = set(found)
        missing = [d for d in dict.fromkeys(req.ids) if d not in found_set]
        return schemas.DeleteResult(deleted=len(found), ids=found, not_found=missing)

    def get_document(self, name: str, doc_id: str) -> schemas.DocumentOut:
        coll = self.registry.get(name)
        loc = coll.locate(doc_id)
        if loc is None:
            raise NotFoundError(f"document {doc_id[:200]!r} not found in {name!r}")
        seg, row = loc
        vec = coll.vector_of(seg, row)
        return schemas.DocumentOut(
            id=doc_id,
            metadata=seg.metadata_at(row),
            vector=schemas.IndicesValues(indices=vec.indices.tolist(), values=vec.values.tolist()),
        )

    # -------------------------------------------------------------- search
    def query_vector(
        self, coll: Collection, req: schemas.SearchIn, where: str = "search"
    ) -> SparseVector:
        if req.k > self.settings.max_k:
            raise InvalidInputError(f"{where}.k: {req.k} is above the limit {self.settings.max_k}")
        if (req.query is None) == (req.vector is None):
            raise InvalidInputError(f"{where}: give exactly one of 'query' (text) or 'vector'")
        if req.vector is not None:
            vec = self.to_vector(coll, req.vector, f"{where}.vector")
            if vec.indices.size == 0:
                raise InvalidInputError(f"{where}.vector: no non-zero weights")
            return vec
        self._check_text(req.query, f"{where}.query")
        enc = self._encoder_for_text(coll, where)
        return rows_from_csr(enc.encode_queries([req.query]))[0]

    def _run(
        self, coll: Collection, reqs: Sequence[schemas.SearchIn], vecs: Sequence[SparseVector]
    ):
        """Group requests with the same k / filter / params so each group is one call."""
        results: list[Any] = [None] * len(reqs)
        groups: dict[tuple, list[int]] = {}
        for i, req in enumerate(reqs):
            key = (req.k, repr(req.filter), req.query_cut, req.heap_factor, req.exact)
            groups.setdefault(key, []).append(i)
        for members in groups.values():
            req = reqs[members[0]]
            flt = MetadataFilter.parse(req.filter)
            params = checked_query_params(
                {"query_cut": req.query_cut, "heap_factor": req.heap_factor}, "search"
            )
            hits = coll.search(
                [vecs[i] for i in members], req.k, flt=flt, query_params=params, exact=req.exact
            )
            for i, h in zip(members, hits, strict=True):
                results[i] = h
        return results

    def check_text_query(self, coll: Collection, req: schemas.SearchIn, where: str) -> None:
        """Cheap checks of a text query before it is queued for the encoder."""
        if req.k > self.settings.max_k:
            raise InvalidInputError(f"{where}.k: {req.k} is above the limit {self.settings.max_k}")
        if req.vector is not None:
            raise InvalidInputError(f"{where}: give exactly one of 'query' (text) or 'vector'")
        self._check_text(req.query or "", f"{where}.query")
        if coll.config.encoder == NO_ENCODER:
            raise InvalidInputError(
                f"{where}: collection {coll.config.name!r} has no encoder; send a vector instead"
            )

    def search(
        self, name: str, req: schemas.SearchIn, vec: SparseVector | None = None
    ) -> schemas.SearchOut:
        start = time.perf_counter()
        coll = self.registry.get(name)
        if vec is None:
            vec = self.query_vector(coll, req)
        hits = self._run(coll, [req], [vec])[0]
        return schemas.SearchOut(hits=[_hit(h) for h in hits], took_ms=_ms(start))

    def batch_search(self, name: str, req: schemas.BatchSearchIn) -> schemas.BatchSearchOut:
        start = time.perf_counter()
        if len(req.searches) > self.settings.max_batch:
            raise InvalidInputError(
                f"{len(req.searches)} searches; the limit is {self.settings.max_batch}"
            )
        coll = self.registry.get(name)
        vecs: list[SparseVector | None] = [None] * len(req.searches)
        texts = []
        for i, s in enumerate(req.searches):
            if s.query is not None and s.vector is None:
                if s.k > self.settings.max_k:
                    raise InvalidInputError(
                        f"searches[{i}].k: above the limit {self.settings.max_k}"
                    )
                self._check_text(s.query, f"searches[{i}].query")
                self._encoder_for_text(coll, f"searches[{i}]")
                texts.append(i)
            else:
                vecs[i] = self.query_vector(coll, s, f"searches[{i}]")
        if texts:
            enc = self.encoders.get(coll.config.encoder)
            encoded = rows_from_csr(enc.encode_queries([req.searches[i].query for i in texts]))
            for i, v in zip(texts, encoded, strict=True):
                vecs[i] = v
        results = self._run(coll, req.searches, vecs)
        took = _ms(start)
        return schemas.BatchSearchOut(
            results=[schemas.SearchOut(hits=[_hit(h) for h in r], took_ms=took) for r in results],
            took_ms=took,
        )

    def explain(
        self, name: str, req: schemas.ExplainIn, qvec: SparseVector | None = None
    ) -> schemas.ExplainOut:
        start = time.perf_counter()
        coll = self.registry.get(name)
        if qvec is None:
            qvec = self.query_vector(coll, req, "explain")
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
            hits = self._run(coll, [req], [qvec])[0]
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
                schemas.ExplainedHit(
                    id=doc_id,
                    score=float(sum(t.contribution for t in terms)),
                    metadata=seg.metadata_at(row),
                    terms=terms,
                )
            )
        return schemas.ExplainOut(hits=out, query_terms=query_terms, took_ms=_ms(start))

    def _term(
        self, coll: Collection, col: int, qw: float, dw: float | None
    ) -> schemas.TermContribution:
        vocab = coll.vocabulary
        if vocab is not None:
            token = vocab[col] if 0 <= col < len(vocab) else str(col)
        else:
            token = self.encoders.feature_name(coll.config.encoder, col)
        return schemas.TermContribution(
            token=token,
            column=col,
            query_weight=qw,
            doc_weight=dw or 0.0,
            contribution=qw * (dw or 0.0),
        )


def _check_metadata(metadata: dict[str, Any], where: str) -> None:
    """Metadata must be plain JSON: no NaN or infinity (it is logged and returned as JSON)."""
    try:
        json.dumps(metadata, allow_nan=False)
    except ValueError as exc:
        raise InvalidInputError(f"{where}: {exc} (NaN and infinity are not JSON)") from exc


def _hit(h: Any) -> schemas.Hit:
    return schemas.Hit(id=h.doc_id, score=h.score, metadata=h.segment.metadata_at(h.row))


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)
