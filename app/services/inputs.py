"""A request's input, checked alone and turned into sparse vectors: documents to write (one
CSR per batch, quantised once) and queries (text through the encoder, or a given vector)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from app.errors import InvalidInputError
from app.services.encoders import NO_ENCODER, EncoderPool
from app.services.models import DocumentInput, IndexedWeights, SearchRequest, VectorInput
from app.services.pins import EncoderPins
from app.settings import Settings
from app.storage.batch import DocumentBatch
from app.storage.collection import Collection
from app.storage.vectors import SparseVector, make_vector, rows_from_csr, to_csr


class RequestInputs:
    """The limits of :class:`Settings` applied to each text, vector and document, with a 422
    that names where in the request the problem is (``where``: ``documents[3].vector``)."""

    def __init__(self, settings: Settings, encoders: EncoderPool) -> None:
        self.settings = settings
        self.encoders = encoders
        self.pins = EncoderPins(encoders)

    # -------------------------------------------------------------- vectors
    def to_vector(self, coll: Collection, raw: VectorInput, where: str) -> SparseVector:
        """A given vector as the collection's columns: parallel lists as they are, tokens
        through the collection's vocabulary (or its encoder's, or column numbers)."""
        dim = coll.config.dim
        limit = self.settings.max_vector_terms
        if isinstance(raw, IndexedWeights):
            if len(raw.indices) > limit:
                raise InvalidInputError(f"{where}: more than {limit} terms")
            return make_vector(raw.indices, raw.values, dim, where)
        if len(raw) > limit:
            raise InvalidInputError(f"{where}: more than {limit} terms")
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

    def check_text(self, text: str, where: str, *, allow_empty: bool = False) -> None:
        """Length limits; an empty query is a mistake, an empty document is a document
        (stored, found by id, matching nothing)."""
        if not allow_empty and not text.strip():
            raise InvalidInputError(f"{where}: text is empty")
        if len(text) > self.settings.max_text_length:
            raise InvalidInputError(
                f"{where}: text has {len(text)} characters; limit {self.settings.max_text_length}"
            )

    def encoder_for_text(self, coll: Collection, where: str) -> Any:
        """The collection's encoder, if it is still the pinned model (else a 409); a
        vector-only collection refuses text."""
        enc = self.encoders.get(coll.config.encoder)
        if enc is None:
            raise InvalidInputError(
                f"{where}: collection {coll.config.name!r} has no encoder; send a vector instead"
            )
        self.pins.check(coll, coll.layouts[0])
        return enc

    # -------------------------------------------------------------- writes
    def checked_documents(
        self, docs: Sequence[DocumentInput]
    ) -> Iterator[tuple[int, str, DocumentInput]]:
        """``(i, where, doc)`` for each document of a write, after the checks every collection
        makes: the batch limit, id length, an id given twice, metadata."""
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
            yield i, where, doc

    def document_batch(self, coll: Collection, docs: Sequence[DocumentInput]) -> DocumentBatch:
        """Validate every document alone, encode the texts in one call and keep the encoder's
        CSR as it is (given vectors join it row by row); quantised once, in the batch."""
        given: dict[int, SparseVector] = {}
        texts: list[str] = []
        for i, where, doc in self.checked_documents(docs):
            if (doc.text is None) == (doc.vector is None):
                raise InvalidInputError(f"{where}: give exactly one of 'text' or 'vector'")
            if doc.text is not None:
                self.check_text(doc.text, where, allow_empty=True)
                self.encoder_for_text(coll, where)
                texts.append(doc.text)
            else:
                given[i] = self.to_vector(coll, doc.vector, f"{where}.vector")
        encoded = None
        if texts:
            encoded = self.encoder_for_text(coll, "documents").encode_documents(texts)
        if encoded is not None and not given:
            vectors = encoded
        else:
            text_rows = iter(rows_from_csr(encoded) if encoded is not None else [])
            rows = [given[i] if i in given else next(text_rows) for i in range(len(docs))]
            vectors = to_csr(rows, coll.config.dim)
        return DocumentBatch.of([d.id for d in docs], vectors, [d.metadata for d in docs])

    # -------------------------------------------------------------- queries
    def check_k(self, k: int, where: str) -> None:
        if k > self.settings.max_k:
            raise InvalidInputError(f"{where}.k: {k} is above the limit {self.settings.max_k}")

    @staticmethod
    def check_one_field(coll: Collection, req: SearchRequest, where: str) -> None:
        """``fields``, ``fusion`` and ``rerank`` are for collections with several fields."""
        if req.fields is not None or req.fusion is not None or req.rerank not in (None, False):
            raise InvalidInputError(
                f"{where}: collection {coll.config.name!r} has one encoder; 'fields', "
                "'fusion' and 'rerank' are for collections created with several fields"
            )

    def query_vector(self, coll: Collection, req: SearchRequest, where: str) -> SparseVector:
        """The query's vector: the given one (non-empty), else its text through the encoder."""
        self.check_one_field(coll, req, where)
        self.check_k(req.k, where)
        if (req.query is None) == (req.vector is None):
            raise InvalidInputError(f"{where}: give exactly one of 'query' (text) or 'vector'")
        if req.vector is not None:
            vec = self.to_vector(coll, req.vector, f"{where}.vector")
            if vec.indices.size == 0:
                raise InvalidInputError(f"{where}.vector: no non-zero weights")
            return vec
        self.check_text(req.query, f"{where}.query")
        enc = self.encoder_for_text(coll, where)
        return rows_from_csr(enc.encode_queries([req.query]))[0]

    def check_text_query(self, coll: Collection, req: SearchRequest, where: str) -> None:
        """Cheap checks of a text query before it is queued for the encoder."""
        self.check_one_field(coll, req, where)
        self.check_k(req.k, where)
        if req.vector is not None:
            raise InvalidInputError(f"{where}: give exactly one of 'query' (text) or 'vector'")
        self.check_text(req.query or "", f"{where}.query")
        if coll.config.encoder == NO_ENCODER:
            raise InvalidInputError(
                f"{where}: collection {coll.config.name!r} has no encoder; send a vector instead"
            )


def check_metadata(metadata: dict[str, Any], where: str) -> None:
    """Metadata must be plain JSON: no NaN or infinity (it is logged and returned as JSON)."""
    try:
        json.dumps(metadata, allow_nan=False)
    except ValueError as exc:
        raise InvalidInputError(f"{where}: {exc} (NaN and infinity are not JSON)") from exc
