"""What the services take and give: plain dataclasses, free of HTTP.

The request and response schemas of :mod:`app.api.schemas` are converted to and from these
at the edge (:mod:`app.api.convert`), so a service can be called, and tested, without pydantic
or FastAPI, and the wire format can change without touching a service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.storage.collection import CollectionConfig


@dataclass(frozen=True)
class IndexedWeights:
    """A sparse vector as parallel lists: column ids and their weights."""

    indices: list[int]
    values: list[float]


# A given vector: parallel lists, or ``{token: weight}`` mapped through a vocabulary.
VectorInput = IndexedWeights | dict[str, float]


@dataclass(frozen=True, kw_only=True)
class CollectionSpec:
    """A collection to create: its encoder (``"none"`` for vectors only, then ``dim`` is
    needed) and its default build and query parameters."""

    name: str
    encoder: str
    dim: int | None = None
    index_params: dict[str, Any] = field(default_factory=dict)
    query_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CollectionSummary:
    """A collection as it was created, and how many live documents it holds."""

    config: CollectionConfig
    documents: int


@dataclass(frozen=True)
class DamagedCollection:
    """A quarantined collection and what is damaged (``lsr repair`` recovers it)."""

    name: str
    damage: str


@dataclass(frozen=True)
class CollectionListing:
    """The collections that serve, and those quarantined."""

    collections: list[CollectionSummary]
    damaged: list[DamagedCollection]


@dataclass(frozen=True, kw_only=True)
class DocumentInput:
    """One document to write: exactly one of ``text`` and ``vector`` (checked by the
    service, which names the document in its error)."""

    id: str
    text: str | None = None
    vector: VectorInput | None = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class WriteOutcome:
    """Documents written (durably) by one request, in request order."""

    written: int
    ids: list[str]


@dataclass(frozen=True)
class DeleteOutcome:
    """Ids deleted, and the asked-for ids that did not exist."""

    deleted: int
    ids: list[str]
    not_found: list[str]


@dataclass(frozen=True)
class StoredDocument:
    """A document as stored: its (quantised) vector and metadata."""

    id: str
    metadata: dict[str, Any] | None
    vector: IndexedWeights


@dataclass(frozen=True, kw_only=True)
class SearchRequest:
    """One search: exactly one of a text ``query`` and a given ``vector``; ``filter`` is a
    metadata filter (:class:`app.storage.filters.MetadataFilter`); ``query_cut`` and
    ``heap_factor`` override the collection's defaults; ``exact`` scores every document."""

    query: str | None = None
    vector: VectorInput | None = None
    k: int = 10
    filter: dict[str, Any] | None = None
    query_cut: int | None = None
    heap_factor: float | None = None
    exact: bool = False


@dataclass(frozen=True, kw_only=True)
class ExplainRequest(SearchRequest):
    """A search to explain; with ``ids``, those documents instead of the hits."""

    ids: list[str] | None = None


@dataclass(frozen=True, kw_only=True)
class SearchHit:
    """A document found: its id, score and metadata."""

    id: str
    score: float
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class SearchResult:
    """One search's hits, best first, and the time the service took."""

    hits: list[SearchHit]
    took_ms: float


@dataclass(frozen=True)
class BatchSearchResult:
    """One result per search of a batch, in request order."""

    results: list[SearchResult]
    took_ms: float


@dataclass(frozen=True, kw_only=True)
class TermContribution:
    """One term of a match: its token, column, both weights and their product."""

    token: str
    column: int
    query_weight: float
    doc_weight: float
    contribution: float


@dataclass(frozen=True, kw_only=True)
class ExplainedHit(SearchHit):
    """A hit with the terms it shares with the query, largest contribution first."""

    terms: list[TermContribution]


@dataclass(frozen=True)
class Explanation:
    """Explained hits and the query's own terms, heaviest first."""

    hits: list[ExplainedHit]
    query_terms: list[TermContribution]
    took_ms: float


@dataclass(frozen=True, kw_only=True)
class JobRequest:
    """A background indexing job: a corpus ``source`` under an import root, written in
    batches of ``batch_size`` (as upserts or adds), at most ``limit`` documents."""

    source: str
    batch_size: int = 64
    upsert: bool = True
    limit: int | None = None


@dataclass(frozen=True, kw_only=True)
class JobStatus:
    """A job's state and progress at one moment (``done`` of ``total`` documents)."""

    id: str
    collection: str
    source: str
    state: str
    done: int
    total: int | None
    error: str | None
    created_at: float
    finished_at: float | None
