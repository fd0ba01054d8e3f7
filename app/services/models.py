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
class FieldSpec:
    """One sparse field of a collection: its encoder (a learned one, or ``"bm25"``: a live
    BM25 field), its own build and query parameters (over the collection's), and for BM25
    ``dim`` (how many distinct terms it can hold), ``k1`` and ``b``."""

    encoder: str
    dim: int | None = None
    index_params: dict[str, Any] = field(default_factory=dict)
    query_params: dict[str, Any] = field(default_factory=dict)
    k1: float | None = None
    b: float | None = None


@dataclass(frozen=True, kw_only=True)
class FusionRequest:
    """How to fuse the fields' rankings: ``method`` rrf | linear, ``weights`` by field name
    (missing fields weigh 0 when some are given; None: all 1), RRF's ``rrf_k``."""

    method: str = "rrf"
    weights: dict[str, float] | None = None
    rrf_k: int | None = None


@dataclass(frozen=True)
class RerankRequest:
    """Re-score the fused top ``depth`` by the dense model's cosine with the query:
    ``(1 - weight) minmax(fused) + weight minmax(cosine)``. ``field``: the collection's re-rank
    field (None: its only one); ``weight`` None: the share selected for its searched fields'
    encoders (:data:`app.services.fusion.SELECTED_RERANK_WEIGHTS`), else 0.5."""

    field: str | None = None
    depth: int = 100
    weight: float | None = None


@dataclass(frozen=True, kw_only=True)
class CollectionSpec:
    """A collection to create: its encoder (``"none"`` for vectors only, then ``dim`` is
    needed), its default build and query parameters, and optionally a Recall@10 target that
    the live controller keeps its searches at (instead of the default query parameters).

    Or several sparse ``fields`` (name -> :class:`FieldSpec`), their default ``fusion`` and
    default dense ``rerank`` (with a re-rank field); with neither ``encoder`` nor ``fields``,
    the service's default configuration."""

    name: str
    encoder: str | None = None
    dim: int | None = None
    index_params: dict[str, Any] = field(default_factory=dict)
    query_params: dict[str, Any] = field(default_factory=dict)
    target_recall: float | None = None
    fields: dict[str, FieldSpec] | None = None
    fusion: FusionRequest | None = None
    rerank: RerankRequest | None = None


@dataclass(frozen=True, kw_only=True)
class CollectionUpdate:
    """A change to a collection: its recall target (None clears it; ``sets_target_recall``
    False leaves it), and model fingerprints to pin: a single-encoder collection's
    ``encoder_fingerprint``, a multi-field one's ``field_fingerprints`` by field; each must be
    the fingerprint of the model now behind the encoder."""

    target_recall: float | None = None
    sets_target_recall: bool = True
    encoder_fingerprint: str | None = None
    field_fingerprints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EncoderPin:
    """A field's encoder pin (:mod:`app.services.pins`): ``field`` None for a single-encoder
    collection; ``pinned`` the fingerprint of the model its stored vectors came from;
    ``current`` the model's this server encodes with (None: not found here); ``matches``
    None when either is unknown."""

    field: str | None
    encoder: str
    pinned: str | None
    current: str | None
    matches: bool | None


@dataclass(frozen=True)
class CollectionSummary:
    """A collection as it was created, how many live documents it holds, and the encoder
    pins of its fields that have a model."""

    config: CollectionConfig
    documents: int
    pins: list[EncoderPin] = field(default_factory=list)


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
    fields: dict[str, IndexedWeights] | None = None


@dataclass(frozen=True, kw_only=True)
class SearchRequest:
    """One search: exactly one of a text ``query`` and a given ``vector``; ``filter`` is a
    metadata filter (:class:`app.storage.filters.MetadataFilter`).

    How the index is searched: by default the collection's setting (its live-controlled
    recall target, else its query parameters); ``query_cut`` and ``heap_factor`` override
    the knobs; ``recall`` asks for a Recall@10 target met by each segment's calibration
    instead (not with the knobs); ``mode="exact"`` (or the older ``exact=True``) returns the
    exact top-k; ``certify`` asks the index to prove an approximate answer exact.
    """

    query: str | None = None
    vector: VectorInput | None = None
    k: int = 10
    filter: dict[str, Any] | None = None
    query_cut: int | None = None
    heap_factor: float | None = None
    exact: bool = False
    recall: float | None = None
    mode: str = "approx"
    certify: bool = False
    fields: list[str] | None = None
    fusion: FusionRequest | None = None
    # None: the collection's default re-rank (if any); False: none.
    rerank: RerankRequest | bool | None = None


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
class Timings:
    """Milliseconds per stage of a search: ``encode`` (the query text through the encoder,
    or a given vector checked), ``index`` (every segment searched and the top-k merged),
    ``fetch`` (ids and metadata of the hits)."""

    encode: float = 0.0
    index: float = 0.0
    fetch: float = 0.0
    fields: dict[str, dict[str, float]] | None = None


@dataclass(frozen=True)
class SearchResult:
    """One search's hits, best first, the time the service took (and per stage), and
    whether the answer is proven to be the exact top-k."""

    hits: list[SearchHit]
    took_ms: float
    certified: bool = False
    timings_ms: Timings = field(default_factory=Timings)


@dataclass(frozen=True)
class BatchSearchResult:
    """One result per search of a batch, in request order (each with the batch's times)."""

    results: list[SearchResult]
    took_ms: float
    timings_ms: Timings = field(default_factory=Timings)


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
    """A hit with the terms it shares with the query, largest contribution first; on a
    multi-field collection ``fields`` says, per field searched, its rank (1 = first, None:
    not in that field's list), its score there, its share of the fused score and its terms."""

    terms: list[TermContribution]
    fields: dict[str, FieldContribution] | None = None


@dataclass(frozen=True, kw_only=True)
class FieldContribution:
    """One field's part in a fused hit."""

    rank: int | None
    score: float | None
    contribution: float
    terms: list[TermContribution]


@dataclass(frozen=True, kw_only=True)
class SegmentExplanation:
    """What the search did inside one segment: the setting it ran and, for an indexed
    segment, the index's own account (``index.SearchExplanation.to_dict()``: lists walked and
    left, blocks visited and skipped, documents scored, heap threshold, bound); ``index`` is
    None where the segment's rows were scored exactly without an index."""

    segment: int
    kind: str
    rows: int
    setting: dict[str, Any]
    index: dict[str, Any] | None = None
    field: str | None = None


@dataclass(frozen=True)
class Explanation:
    """Explained hits, the query's own terms, heaviest first, and per segment what the
    index did."""

    hits: list[ExplainedHit]
    query_terms: list[TermContribution]
    took_ms: float
    segments: list[SegmentExplanation] = field(default_factory=list)
    fields: dict[str, list[TermContribution]] | None = None


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
