"""The services on their own: plain dataclasses in and out, no FastAPI or pydantic between
(issue 11: "services that work on plain dataclasses, HTTP schemas converted at the edge")."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from app.api import convert, schemas
from app.errors import InvalidInputError, NotFoundError
from app.services.encoders import EncoderPool
from app.services.jobs import JobManager
from app.services.models import (
    BatchSearchResult,
    CollectionSpec,
    CollectionUpdate,
    DocumentInput,
    ExplainedHit,
    ExplainRequest,
    Explanation,
    FieldContribution,
    FieldSpec,
    FusionRequest,
    IndexedWeights,
    JobRequest,
    JobStatus,
    SearchHit,
    SearchRequest,
    SearchResult,
    SegmentExplanation,
    TermContribution,
    Timings,
)
from app.services.pool import WorkerPool
from app.services.registry import CollectionRegistry
from app.services.search import SearchService
from tests.app.conftest import make_settings


@pytest.fixture
def service(data_dir: Path) -> Iterator[SearchService]:
    settings = make_settings(data_dir)
    registry = CollectionRegistry(settings)
    registry.open_all()
    pools = [WorkerPool(name, 1, 8) for name in ("search", "write")]
    svc = SearchService(
        settings,
        registry,
        EncoderPool(settings.encoders),
        search_pool=pools[0],
        write_pool=pools[1],
    )
    try:
        yield svc
    finally:
        for pool in pools:
            pool.shutdown()
        registry.close()


def _vector_collection(service: SearchService) -> None:
    service.create_collection(CollectionSpec(name="v", encoder="none", dim=10))
    docs = [
        DocumentInput(id="a", vector=IndexedWeights([1, 2], [1.0, 2.0]), metadata={"g": 1}),
        DocumentInput(id="b", vector={"2": 3.0, "5": 1.0}),
        DocumentInput(id="c", vector=IndexedWeights([7], [1.0])),
    ]
    outcome = service.write_documents("v", docs, False)
    assert (outcome.written, outcome.ids) == (3, ["a", "b", "c"])


def test_collections_documents_and_search_without_http(service: SearchService) -> None:
    _vector_collection(service)
    summary = service.describe("v")
    assert (summary.config.name, summary.config.dim, summary.documents) == ("v", 10, 3)
    assert [c.config.name for c in service.list_collections().collections] == ["v"]

    stored = service.get_document("v", "a")
    assert (stored.vector.indices, stored.vector.values, stored.metadata) == (
        [1, 2],
        [1.0, 2.0],
        {"g": 1},
    )
    query = SearchRequest(vector=IndexedWeights([2], [1.0]), k=5)
    result = service.search_blocking("v", query)
    assert [(h.id, h.score) for h in result.hits] == [("b", 3.0), ("a", 2.0)]
    assert result.hits[1].metadata == {"g": 1}
    # the async entry point (the route's one call) gives the same hits
    assert asyncio.run(service.search("v", query)).hits == result.hits

    batch = service.batch_search("v", [query, SearchRequest(vector={"7": 1.0}, k=1)])
    assert [[h.id for h in r.hits] for r in batch.results] == [["b", "a"], ["c"]]

    explained = service.explain_blocking("v", ExplainRequest(vector={"2": 1.0}, ids=["a"]))
    (hit,) = explained.hits
    assert (hit.id, hit.score, [t.column for t in hit.terms]) == ("a", 2.0, [2])

    outcome = service.delete_documents("v", ["a", "zz", "a"])
    assert (outcome.deleted, outcome.ids, outcome.not_found) == (1, ["a"], ["zz"])
    with pytest.raises(NotFoundError):
        service.get_document("v", "a")


def test_service_errors_name_the_request_field(service: SearchService) -> None:
    _vector_collection(service)
    with pytest.raises(InvalidInputError, match=r"documents\[0\]: give exactly one"):
        service.write_documents("v", [DocumentInput(id="x")], False)
    with pytest.raises(InvalidInputError, match=r"search.vector: no non-zero weights"):
        service.search_blocking("v", SearchRequest(vector=IndexedWeights([], [])))
    with pytest.raises(InvalidInputError, match=r"search: collection 'v' has no encoder"):
        asyncio.run(service.search("v", SearchRequest(query="text")))


def test_jobs_report_plain_statuses(service: SearchService, data_dir: Path) -> None:
    _vector_collection(service)
    jobs = JobManager(service.settings, service)
    try:
        with pytest.raises(InvalidInputError, match="not a readable file"):
            jobs.submit("v", JobRequest(source="missing.jsonl"))
        assert jobs.list() == []
        with pytest.raises(NotFoundError):
            jobs.get("nope")
    finally:
        jobs.close()


def test_edge_conversion_keeps_every_field() -> None:
    """Every request field reaches the service, and every result field the response."""
    given = {
        "k": 3, "filter": {"g": 1}, "query_cut": 4, "heap_factor": 0.5, "exact": True,
        "recall": 0.9, "mode": "exact", "certify": True,
    }  # fmt: skip
    req = schemas.ExplainIn(vector={"indices": [1], "values": [2]}, ids=["a"], **given)
    want = ExplainRequest(vector=IndexedWeights([1], [2]), ids=["a"], **given)
    assert convert.explain_request(req) == want
    tokens = convert.search_request(schemas.SearchIn(vector={"tok": 1.5}))
    assert tokens.vector == {"tok": 1.5} and tokens.k == 10
    docs = convert.documents(
        schemas.DocumentsIn(documents=[{"id": "d", "text": "", "metadata": {"m": [1]}}])
    )
    assert docs == [DocumentInput(id="d", text="", metadata={"m": [1]})]
    job = convert.job_request(schemas.JobIn(source="x.jsonl", limit=5))
    assert job == JobRequest(source="x.jsonl", batch_size=64, upsert=True, limit=5)

    term = TermContribution(token="t", column=2, query_weight=1.0, doc_weight=2.0, contribution=2.0)
    hit = ExplainedHit(id="a", score=2.0, metadata={"g": 1}, terms=[term])
    inside = SegmentExplanation(
        segment=1, kind="sealed", rows=9, setting={"mode": "exact"}, index={"docs_scored": 9}
    )
    explained = Explanation([hit], [term], 0.5, [inside])
    assert convert.explain_out(explained).model_dump() == asdict(explained)
    found = SearchResult([SearchHit(id="a", score=1.5)], 0.2, True, Timings(0.1, 0.05, 0.01))
    single = asdict(found)  # a single-encoder answer keeps its three stages, no "fields"
    assert single["timings_ms"].pop("fields") is None
    assert convert.search_out(found).model_dump() == single
    per_field = {"splade": {"encode": 0.1, "index": 0.2, "hits": 3.0}}
    fused = SearchResult(
        [SearchHit(id="a", score=1.5)], 0.2, True, Timings(0.1, 0.2, 0.01, per_field)
    )
    assert convert.search_out(fused).model_dump() == asdict(fused)
    batch = BatchSearchResult([fused], 0.3, Timings(0.2, 0.05, 0.01, per_field))
    assert convert.batch_search_out(batch).model_dump() == asdict(batch)
    share = FieldContribution(rank=2, score=3.0, contribution=0.5, terms=[term])
    fields_hit = ExplainedHit(id="a", score=0.5, metadata=None, terms=[], fields={"f": share})
    inside_field = SegmentExplanation(
        segment=1, kind="sealed", rows=9, setting={"mode": "exact"}, field="f"
    )
    explained = Explanation([fields_hit], [term], 0.5, [inside_field], fields={"f": [term]})
    assert convert.explain_out(explained).model_dump() == asdict(explained)
    fields_req = schemas.SearchIn(
        query="q", fields=["f"], fusion={"method": "linear", "weights": {"f": 2}, "rrf_k": 5}
    )
    assert convert.search_request(fields_req) == SearchRequest(
        query="q", fields=["f"], fusion=FusionRequest(method="linear", weights={"f": 2}, rrf_k=5)
    )
    create = schemas.CollectionCreate(
        name="c", fields={"f": {"encoder": "bm25", "dim": 9, "k1": 1.2, "b": 0.5}}
    )
    assert convert.collection_spec(create) == CollectionSpec(
        name="c", fields={"f": FieldSpec(encoder="bm25", dim=9, k1=1.2, b=0.5)}
    )
    spec = convert.collection_spec(
        schemas.CollectionCreate(name="c", encoder="none", dim=3, target_recall=0.9)
    )
    assert spec == CollectionSpec(name="c", encoder="none", dim=3, target_recall=0.9)
    assert convert.collection_update(
        schemas.CollectionPatch(target_recall=None)
    ) == CollectionUpdate(target_recall=None)
    status = JobStatus(
        id="j", collection="c", source="s", state="done", done=3, total=3, error=None,
        created_at=1.0, finished_at=2.0,
    )  # fmt: skip
    assert convert.job_out(status).model_dump() == asdict(status)
