"""Request and response models (apart from storage); every float rejects NaN and infinity."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
# The index stores float16 weights (65504 is float16's largest) and int32 column ids.
MAX_WEIGHT = 65504.0
Weight = Annotated[StrictInt | StrictFloat, Field(ge=0, le=MAX_WEIGHT, allow_inf_nan=False)]
Column = Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]


def _recall_number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError(
            "recall_type", "must be a number in (0, 1], e.g. 0.95, not {kind}",
            {"kind": type(value).__name__},
        )  # fmt: skip
    return value


# A Recall@10 target: a JSON number in (0, 1] (not a string, not a boolean).
Recall = Annotated[float, BeforeValidator(_recall_number), Field(gt=0, le=1, allow_inf_nan=False)]
_SURROGATE = re.compile("[\ud800-\udfff]")


def find_surrogate(value: Any, where: str = "") -> str | None:
    """Where in ``value`` (a JSON value) a lone UTF-16 surrogate sits, if anywhere: such a
    string cannot be encoded as UTF-8, so no encoder, log or answer can carry it."""
    if isinstance(value, str):
        return where if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = find_surrogate(key, f"{where}[key]") or find_surrogate(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if found := find_surrogate(item, f"{where}.{i}"):
                return found
    return None


class Strict(BaseModel):
    """Request bodies: unknown fields, NaN, infinity and lone surrogates are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _valid_unicode(cls, value: Any) -> Any:
        where = find_surrogate(value)
        if where is not None:  # "at": the path inside this field, added to the error's loc
            raise PydanticCustomError(
                "lone_surrogate",
                "contains a lone UTF-16 surrogate; send valid Unicode",
                {"at": where.lstrip(".")},
            )
        return value


class IndicesValues(Strict):
    """A sparse vector as parallel lists: column ids and their (non-negative) weights."""

    indices: list[Column]
    values: list[Weight]


# {"indices": [...], "values": [...]} or {"token": weight, ...}
VectorIn = IndicesValues | dict[str, Weight]


class FieldIn(Strict):
    """One sparse field of a collection."""

    encoder: str = Field(
        min_length=1, max_length=256, description='an encoder name, or "bm25" (live BM25)'
    )
    dim: int | None = Field(
        None, ge=1, le=2**22, description="bm25: how many distinct terms it can hold"
    )
    index_params: dict[str, Any] = Field(
        default_factory=dict, description="this field's SeismicIndex.build params"
    )
    query_params: dict[str, Any] = Field(
        default_factory=dict, description="this field's default query_cut, heap_factor"
    )
    k1: float | None = Field(None, ge=0, le=100, description="bm25 only (default 0.9)")
    b: float | None = Field(None, ge=0, le=1, description="bm25 only (default 0.4)")


FusionWeight = Annotated[StrictInt | StrictFloat, Field(ge=0, le=1e6, allow_inf_nan=False)]


class FusionIn(Strict):
    """How the fields' rankings are fused."""

    method: Literal["rrf", "linear"] = Field(
        "rrf", description="rrf: sum w / (rrf_k + rank); linear: sum w * minmax(score)"
    )
    weights: dict[str, FusionWeight] | None = Field(
        None, description="by field name; fields not named weigh 0 (none given: all 1)"
    )
    rrf_k: int | None = Field(None, ge=0, le=1_000_000, description="default 60")


class RerankIn(Strict):
    """Re-score the fused candidates with the collection's re-rank field (a dense model)."""

    field: str | None = Field(
        None, max_length=64, description="the re-rank field (default: the collection's one)"
    )
    depth: int = Field(100, ge=1, le=10_000, description="fused candidates re-scored (>= k)")
    weight: float | None = Field(
        None,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="the dense cosine's share: (1 - w) minmax(fused) + w minmax(cosine); "
        "default: the share selected for the searched fields' encoders, else 0.5",
    )


class CollectionCreate(Strict):
    name: str = Field(pattern=NAME_PATTERN, description="letters, digits, _ and -; 1-64 chars")
    encoder: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description='an encoder name, or "none" for vectors only; with neither encoder nor '
        "fields: splade-tiny + bm25 fields, fused linear 0.3 / 0.7",
    )
    fields: dict[str, FieldIn] | None = Field(
        None, description="several sparse fields by name, each with its own encoder"
    )
    fusion: FusionIn | None = Field(None, description="the fields' default fusion")
    rerank: RerankIn | None = Field(
        None,
        description="the default re-rank of searches that give none (needs a re-rank field, "
        'e.g. {"encoder": "minilm-dense"})',
    )
    dim: int | None = Field(None, ge=1, le=2**31 - 1, description='required with encoder "none"')
    index_params: dict[str, Any] = Field(
        default_factory=dict, description="SeismicIndex.build params"
    )
    query_params: dict[str, Any] = Field(
        default_factory=dict, description="default query_cut, heap_factor"
    )
    target_recall: Recall | None = Field(
        None,
        description="Recall@10 that searches are kept at by the live controller (instead of "
        "query_params), e.g. 0.95",
    )


Fingerprint = Annotated[str, Field(min_length=1, max_length=100)]


class FieldPatch(Strict):
    encoder_fingerprint: Fingerprint = Field(
        description="accept the model now behind this field's encoder: its fingerprint "
        "(encoder_pins[].current); then re-index the documents by text"
    )


class CollectionPatch(Strict):
    """At least one change; what is left out stays as it is."""

    target_recall: Recall | None = Field(
        None,
        description="the new Recall@10 target; null returns to the collection's query_params",
    )
    encoder_fingerprint: Fingerprint | None = Field(
        None,
        description="accept the model now behind the encoder: its fingerprint "
        "(encoder_pins[].current); then re-index the documents by text",
    )
    fields: dict[str, FieldPatch] | None = Field(
        None, description="per field of a multi-field collection: its encoder_fingerprint"
    )

    @model_validator(mode="after")
    def _some_change(self) -> CollectionPatch:
        if not self.model_fields_set:
            raise ValueError("give target_recall, encoder_fingerprint or fields")
        return self


class EncoderPin(BaseModel):
    """A field's encoder model: the one its documents were encoded with, and the one this
    server encodes with now (texts are refused with 409 encoder_changed while they differ)."""

    field: str | None = Field(description="null: the collection's one encoder")
    encoder: str
    pinned: str | None = Field(description="fingerprint of the model the stored vectors are from")
    current: str | None = Field(description="fingerprint of the model behind the encoder now")
    matches: bool | None = Field(description="null when either fingerprint is unknown")


class CollectionInfo(BaseModel):
    name: str
    encoder: str
    dim: int
    index_params: dict[str, Any]
    query_params: dict[str, Any]
    created_at: float
    documents: int
    target_recall: float | None = None
    fields: dict[str, dict[str, Any]] | None = None
    fusion: dict[str, Any] | None = None
    rerank: dict[str, Any] | None = None
    encoder_fingerprint: str | None = None
    encoder_pins: list[EncoderPin] = Field(default_factory=list)


class DamagedCollection(BaseModel):
    """A quarantined collection: what is damaged (``lsr repair`` recovers it)."""

    name: str
    damage: str


class CollectionList(BaseModel):
    collections: list[CollectionInfo]
    damaged: list[DamagedCollection] = Field(default_factory=list)


class DocumentIn(Strict):
    id: str = Field(min_length=1)
    text: str | None = None
    vector: VectorIn | None = None
    metadata: dict[str, Any] | None = None


class DocumentsIn(Strict):
    documents: list[DocumentIn] = Field(min_length=1)


class WriteResult(BaseModel):
    written: int
    ids: list[str]


class DeleteIn(Strict):
    ids: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)


class DeleteResult(BaseModel):
    deleted: int
    ids: list[str]
    not_found: list[str]


class DocumentOut(BaseModel):
    id: str
    metadata: dict[str, Any] | None
    vector: IndicesValues
    fields: dict[str, IndicesValues] | None = Field(
        None, description="multi-field collections: each field's vector in its own columns"
    )


class SearchIn(Strict):
    query: str | None = None
    vector: VectorIn | None = None
    k: int = Field(10, ge=1)
    filter: dict[str, Any] | None = None
    query_cut: int | None = Field(None, ge=1, le=100_000)
    heap_factor: float | None = Field(
        None, ge=0, le=1e6, description="Seismic heap_factor for block skipping (see index docs)"
    )
    exact: StrictBool = Field(False, description='the same as mode "exact" (older name)')
    recall: Recall | None = Field(
        None,
        description="a Recall@10 target met by each segment's calibration (not with "
        "query_cut / heap_factor, nor with mode exact)",
    )
    mode: Literal["approx", "exact"] = Field(
        "approx", description='"exact": the exact top-k (index exact mode, early termination)'
    )
    certify: StrictBool = Field(
        False, description="ask the index to prove an approximate answer exact (certified)"
    )
    fields: list[str] | None = Field(
        None, min_length=1, description="multi-field collections: search only these fields"
    )
    fusion: FusionIn | None = Field(
        None, description="multi-field collections: this request's fusion"
    )
    rerank: RerankIn | Literal[False] | None = Field(
        None,
        description="multi-field collections with a re-rank field: re-score the fused top "
        "depth by the dense model's cosine with the query (text queries only); false: none, "
        "whatever the collection's default",
    )


class Hit(BaseModel):
    id: str
    score: float
    metadata: dict[str, Any] | None = None


class Timings(BaseModel):
    """Milliseconds per stage, measured around the work itself."""

    encode: float = Field(description="query text through the encoder (or vector checked)")
    index: float = Field(description="every segment searched and the top-k merged")
    fetch: float = Field(description="ids and metadata of the hits")
    fields: dict[str, dict[str, float]] | None = Field(
        None, description="multi-field collections: per field, encode and index ms, hits"
    )

    @model_serializer(mode="wrap")
    def _without_absent_fields(self, handler: Any) -> dict[str, Any]:
        out = handler(self)
        if out.get("fields") is None:  # single-encoder answers keep their three stages
            out.pop("fields", None)
        return out


class SearchOut(BaseModel):
    hits: list[Hit]
    took_ms: float
    certified: bool = Field(
        description="true only when the hits are proven to be the exact top-k: exact mode, "
        "or every segment scored exactly or certified by its index (certify: true)"
    )
    timings_ms: Timings


class BatchSearchIn(Strict):
    searches: list[SearchIn] = Field(min_length=1)


class BatchSearchOut(BaseModel):
    results: list[SearchOut]
    took_ms: float
    timings_ms: Timings


class ExplainIn(SearchIn):
    ids: list[str] | None = Field(None, description="explain these documents instead of the hits")


class TermContribution(BaseModel):
    token: str
    column: int
    query_weight: float
    doc_weight: float
    contribution: float


class FieldContribution(BaseModel):
    rank: int | None
    score: float | None
    contribution: float
    terms: list[TermContribution]


class ExplainedHit(Hit):
    terms: list[TermContribution]
    fields: dict[str, FieldContribution] | None = Field(
        None, description="per field: rank (1 = first), score, share of the fused score, terms"
    )


class SegmentExplanation(BaseModel):
    """One segment's part of the search: the setting it ran, and the index's account of the
    query (lists walked and left, blocks visited and skipped, documents scored, the heap
    threshold, the bound on unscored documents) where it has an index."""

    segment: int
    kind: str
    rows: int
    setting: dict[str, Any]
    index: dict[str, Any] | None = None
    field: str | None = Field(None, description="multi-field collections: the field searched")


class ExplainOut(BaseModel):
    hits: list[ExplainedHit]
    query_terms: list[TermContribution]
    took_ms: float
    segments: list[SegmentExplanation] = Field(default_factory=list)
    fields: dict[str, list[TermContribution]] | None = None


class JobIn(Strict):
    source: str = Field(
        min_length=1, description="a JSONL / Parquet file or a BEIR folder on the server"
    )
    batch_size: int = Field(64, ge=1, le=4096)
    upsert: bool = True
    limit: int | None = Field(None, ge=1)


class JobOut(BaseModel):
    id: str
    collection: str
    source: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    done: int
    total: int | None
    error: str | None
    created_at: float
    finished_at: float | None


class JobList(BaseModel):
    jobs: list[JobOut]


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[Any] | None = None


class ErrorOut(BaseModel):
    error: ErrorBody
