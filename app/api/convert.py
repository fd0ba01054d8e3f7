"""The edge: HTTP request schemas to the services' plain dataclasses, and their results back to
response schemas. Nothing here decides anything; it only moves fields."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from pydantic import BaseModel

from app.api import schemas
from app.services import models

T = TypeVar("T")


def _plain(cls: type[T], req: BaseModel, **given: Any) -> T:
    """``cls`` (a service dataclass) from the same-named fields of ``req``; ``given`` fields
    (the nested ones, converted by the caller) take precedence."""
    names = [f.name for f in fields(cls) if f.name not in given]  # type: ignore[arg-type]
    return cls(**{name: getattr(req, name) for name in names}, **given)


def _values(result: Any) -> dict[str, Any]:
    """A service dataclass's fields, by name, not copied (the response model copies them)."""
    return {f.name: getattr(result, f.name) for f in fields(result)}


# ------------------------------------------------------------------------------- requests
def vector(raw: schemas.VectorIn | None) -> models.VectorInput | None:
    """A given vector: parallel lists become :class:`models.IndexedWeights`; a token map is
    passed as it is."""
    if isinstance(raw, schemas.IndicesValues):
        return models.IndexedWeights(raw.indices, raw.values)
    return raw


def fusion(raw: schemas.FusionIn | None) -> models.FusionRequest | None:
    return None if raw is None else _plain(models.FusionRequest, raw)


def rerank(raw: schemas.RerankIn | bool | None) -> models.RerankRequest | bool | None:
    """A re-rank, ``False`` (none, whatever the collection's default) or None (its default)."""
    return raw if raw is None or raw is False else _plain(models.RerankRequest, raw)


def collection_spec(req: schemas.CollectionCreate) -> models.CollectionSpec:
    fields = None
    if req.fields is not None:
        fields = {name: _plain(models.FieldSpec, f) for name, f in req.fields.items()}
    return _plain(
        models.CollectionSpec,
        req,
        fields=fields,
        fusion=fusion(req.fusion),
        rerank=rerank(req.rerank),
    )


def collection_update(req: schemas.CollectionPatch) -> models.CollectionUpdate:
    """What was given changes; ``target_recall`` left out is kept (null clears it)."""
    return models.CollectionUpdate(
        target_recall=req.target_recall,
        sets_target_recall="target_recall" in req.model_fields_set,
        encoder_fingerprint=req.encoder_fingerprint,
        field_fingerprints={n: f.encoder_fingerprint for n, f in (req.fields or {}).items()},
    )


def documents(req: schemas.DocumentsIn) -> list[models.DocumentInput]:
    return [_plain(models.DocumentInput, d, vector=vector(d.vector)) for d in req.documents]


def _query_parts(req: schemas.SearchIn) -> dict[str, Any]:
    """A search's (or explanation's) nested inputs, converted."""
    return {
        "vector": vector(req.vector),
        "fusion": fusion(req.fusion),
        "rerank": rerank(req.rerank),
    }


def search_request(req: schemas.SearchIn) -> models.SearchRequest:
    return _plain(models.SearchRequest, req, **_query_parts(req))


def search_requests(req: schemas.BatchSearchIn) -> list[models.SearchRequest]:
    return [search_request(s) for s in req.searches]


def explain_request(req: schemas.ExplainIn) -> models.ExplainRequest:
    return _plain(models.ExplainRequest, req, **_query_parts(req))


def job_request(req: schemas.JobIn) -> models.JobRequest:
    return _plain(models.JobRequest, req)


# ------------------------------------------------------------------------------ responses
def collection_info(summary: models.CollectionSummary) -> schemas.CollectionInfo:
    return schemas.CollectionInfo(
        **summary.config.to_dict(),
        documents=summary.documents,
        encoder_pins=[schemas.EncoderPin(**_values(pin)) for pin in summary.pins],
    )


def collection_list(listing: models.CollectionListing) -> schemas.CollectionList:
    return schemas.CollectionList(
        collections=[collection_info(c) for c in listing.collections],
        damaged=[schemas.DamagedCollection(**_values(d)) for d in listing.damaged],
    )


def write_result(outcome: models.WriteOutcome) -> schemas.WriteResult:
    return schemas.WriteResult(**_values(outcome))


def delete_result(outcome: models.DeleteOutcome) -> schemas.DeleteResult:
    return schemas.DeleteResult(**_values(outcome))


def document_out(doc: models.StoredDocument) -> schemas.DocumentOut:
    weights = schemas.IndicesValues(indices=doc.vector.indices, values=doc.vector.values)
    fields = None
    if doc.fields is not None:
        fields = {
            name: schemas.IndicesValues(indices=w.indices, values=w.values)
            for name, w in doc.fields.items()
        }
    return schemas.DocumentOut(id=doc.id, metadata=doc.metadata, vector=weights, fields=fields)


def _hit(hit: models.SearchHit) -> schemas.Hit:
    return schemas.Hit(id=hit.id, score=hit.score, metadata=hit.metadata)


def timings(result: models.Timings) -> schemas.Timings:
    return schemas.Timings(**_values(result))


def search_out(result: models.SearchResult) -> schemas.SearchOut:
    return schemas.SearchOut(
        hits=[_hit(h) for h in result.hits],
        took_ms=result.took_ms,
        certified=result.certified,
        timings_ms=timings(result.timings_ms),
    )


def batch_search_out(result: models.BatchSearchResult) -> schemas.BatchSearchOut:
    return schemas.BatchSearchOut(
        results=[search_out(r) for r in result.results],
        took_ms=result.took_ms,
        timings_ms=timings(result.timings_ms),
    )


def _term(term: models.TermContribution) -> schemas.TermContribution:
    return schemas.TermContribution(**_values(term))


def explain_out(result: models.Explanation) -> schemas.ExplainOut:
    hits = [
        schemas.ExplainedHit(
            id=h.id,
            score=h.score,
            metadata=h.metadata,
            terms=[_term(t) for t in h.terms],
            fields=None
            if h.fields is None
            else {
                name: schemas.FieldContribution(
                    rank=f.rank,
                    score=f.score,
                    contribution=f.contribution,
                    terms=[_term(t) for t in f.terms],
                )
                for name, f in h.fields.items()
            },
        )
        for h in result.hits
    ]
    query_terms = [_term(t) for t in result.query_terms]
    segments = [schemas.SegmentExplanation(**_values(s)) for s in result.segments]
    fields = None
    if result.fields is not None:
        fields = {name: [_term(t) for t in terms] for name, terms in result.fields.items()}
    return schemas.ExplainOut(
        hits=hits,
        query_terms=query_terms,
        took_ms=result.took_ms,
        segments=segments,
        fields=fields,
    )


def job_out(status: models.JobStatus) -> schemas.JobOut:
    return schemas.JobOut(**_values(status))


def job_list(statuses: list[models.JobStatus]) -> schemas.JobList:
    return schemas.JobList(jobs=[job_out(s) for s in statuses])
