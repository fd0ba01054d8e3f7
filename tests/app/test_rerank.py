"""Dense re-ranking in the service: a collection keeps a re-rank field (``minilm-dense``: the
dense model's embeddings, stored beside the sparse fields, never indexed), and a search with
``"rerank"`` re-scores the fused top ``depth`` as ``(1 - w) minmax(fused) + w minmax(cosine)``
(the Bi-Granular idea: sparse candidates, dense scores), the same arithmetic as ``lsr eval
--rerank dense``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.services.fusion import rerank
from tests.app.conftest import make_settings
from tests.conftest import needs_minilm

pytestmark = needs_minilm

FIELDS = {
    "name": "r",
    "fields": {"bm25": {"encoder": "bm25"}, "dense": {"encoder": "minilm-dense"}},
}
TOPICS = (
    "the lift of a thin wing in supersonic flow",
    "boundary layer transition on a flat plate",
    "heat transfer in a hypersonic boundary layer",
    "library catalogue search by subject headings",
    "red blood cells in anaemia patients",
    "a compiler for a block structured language",
)
QUERY = "boundary layer heat transfer in a high speed flow"


def _docs() -> list[dict]:
    docs = [
        {"id": f"d{i}", "text": f"Report {i}: {TOPICS[i % len(TOPICS)]}, case {i % 5}."}
        for i in range(30)
    ]
    docs.append({"id": "empty", "text": ""})  # a valid document: no terms, no embedding
    return docs


def _expected(hits_no_rerank: list[dict], weight: float) -> dict[str, float]:
    """Each candidate's re-ranked score, its cosine computed here from its text."""
    from encoders.csr_embedder import DenseEmbedder

    texts = {d["id"]: d["text"] for d in _docs()}
    ids = [h["id"] for h in hits_no_rerank]
    embedder = DenseEmbedder(device="cpu")
    query = embedder.embed([QUERY])[0]
    docs = embedder.embed([texts[i] for i in ids])
    cosines = (docs @ query).tolist()
    return dict(rerank(ids, [h["score"] for h in hits_no_rerank], cosines, weight))


# Stored weights are float16-rounded and the embeddings here come from another batch: scores
# agree to about 1e-3 (min-max scaled), so orders are compared up to near-ties.
TOL = 5e-3


def _assert_reranked(hits: list[dict], expected: dict[str, float], k: int) -> None:
    """``hits`` are a top ``k`` of ``expected``: each scores what the arithmetic gives it, and
    no candidate left out scores above the last hit (up to TOL)."""
    assert len(hits) == min(k, len(expected))
    for hit in hits:
        assert hit["score"] == pytest.approx(expected[hit["id"]], abs=TOL), hit
    floor = hits[-1]["score"]
    for doc_id in set(expected) - {h["id"] for h in hits}:
        assert expected[doc_id] <= floor + TOL, doc_id


def _search(c: TestClient, body: dict, status: int = 200) -> dict:
    r = c.post("/v1/collections/r/search", json={"query": QUERY, **body})
    assert r.status_code == status, r.text
    return r.json()


def test_rerank_rescores_the_fused_candidates_by_the_dense_cosine(data_dir: Path) -> None:
    """bm25's top 20 re-scored by the dense cosine: the order the arithmetic gives from the
    candidates' own embeddings; weight 0 keeps the sparse order; the same answers after the
    segment is sealed (the dense field is not indexed) and after a restart."""
    settings = make_settings(data_dir, flat_segment_rows=10)
    with TestClient(create_app(settings)) as c:
        created = c.post("/v1/collections", json=FIELDS)
        assert created.status_code == 201, created.text
        assert created.json()["fields"]["dense"]["rerank"] is True
        assert created.json()["fields"]["dense"]["width"] == 768
        assert c.post("/v1/collections/r/documents", json={"documents": _docs()}).status_code == 201
        sparse = _search(c, {"k": 20})["hits"]
        assert len(sparse) >= 10
        out = _search(c, {"k": 5, "rerank": {"depth": 20, "weight": 1.0}})
        _assert_reranked(out["hits"], _expected(sparse, 1.0), 5)
        assert [h["id"] for h in out["hits"]] != [h["id"] for h in sparse[:5]]  # it re-orders
        timing = out["timings_ms"]["fields"]["dense"]
        assert timing["candidates"] == len(sparse) and timing["weight"] == 1.0
        mixed = _search(c, {"k": 5, "rerank": {"depth": 20, "weight": 0.3}})["hits"]
        _assert_reranked(mixed, _expected(sparse, 0.3), 5)
        kept = _search(c, {"k": 5, "rerank": {"depth": 20, "weight": 0.0}})["hits"]
        assert [h["id"] for h in kept] == [h["id"] for h in sparse[:5]]
        # the default share for fields without a selected one: 0.5
        default = _search(c, {"k": 5, "rerank": {"depth": 20}})
        assert default["timings_ms"]["fields"]["dense"]["weight"] == 0.5
        assert c.post("/v1/collections/r/seal").status_code == 200
        stats = c.get("/v1/collections/r/stats").json()
        sealed = [s for s in stats["segments"] if s["kind"] == "sealed"]
        assert sealed and all(s["fields_indexed"] == ["bm25"] for s in sealed)
        again = _search(c, {"k": 5, "rerank": {"depth": 20, "weight": 1.0}})["hits"]
        assert [h["id"] for h in again] == [h["id"] for h in out["hits"]]
    with TestClient(create_app(settings)) as c:
        restarted = _search(c, {"k": 5, "rerank": {"depth": 20, "weight": 1.0}})["hits"]
        assert [h["id"] for h in restarted] == [h["id"] for h in out["hits"]]


def test_a_collection_default_rerank_applies_to_text_searches(data_dir: Path) -> None:
    """``"rerank"`` at creation re-ranks every text search that asks for none; ``false``
    turns it off for one search; a vector search and an explanation are not re-ranked."""
    with TestClient(create_app(make_settings(data_dir))) as c:
        body = {**FIELDS, "rerank": {"depth": 20, "weight": 1.0}}
        created = c.post("/v1/collections", json=body)
        assert created.status_code == 201, created.text
        assert created.json()["rerank"] == {"field": "dense", "depth": 20, "weight": 1.0}
        assert c.post("/v1/collections/r/documents", json={"documents": _docs()}).status_code == 201
        sparse = _search(c, {"k": 20, "rerank": False})
        assert "dense" not in sparse["timings_ms"]["fields"]
        out = _search(c, {"k": 5})
        _assert_reranked(out["hits"], _expected(sparse["hits"], 1.0), 5)
        assert out["timings_ms"]["fields"]["dense"]["candidates"] == len(sparse["hits"])
        vector = {"indices": [1, 2], "values": [1.0, 1.0]}
        r = c.post("/v1/collections/r/search", json={"vector": vector, "fields": ["bm25"]})
        assert r.status_code == 200 and "dense" not in r.json()["timings_ms"]["fields"], r.text
        r = c.post("/v1/collections/r/explain", json={"query": QUERY, "k": 3})
        assert r.status_code == 200, r.text
        batch = c.post(
            "/v1/collections/r/search/batch", json={"searches": [{"query": QUERY, "k": 5}]}
        )
        assert batch.status_code == 200, batch.text
        assert [h["id"] for h in batch.json()["results"][0]["hits"]] == [
            h["id"] for h in out["hits"]
        ]
        bad = {**FIELDS, "name": "r2", "rerank": {"field": "bm25"}}
        r = c.post("/v1/collections", json=bad)
        assert r.status_code == 422 and "not a re-rank field" in r.text, r.text
        r = c.post("/v1/collections", json={"name": "one", "encoder": "splade-tiny", "rerank": {}})
        assert r.status_code == 422 and "several" in r.text, r.text


def test_rerank_input_errors_are_clear_4xx(data_dir: Path) -> None:
    """Each misuse answers 422 naming what is wrong, and the collection still serves."""
    with TestClient(create_app(make_settings(data_dir))) as c:
        assert c.post("/v1/collections", json=FIELDS).status_code == 201
        assert c.post("/v1/collections/r/documents", json={"documents": _docs()}).status_code == 201
        cases = [
            ({"rerank": {"field": "bm25"}}, "not a re-rank field"),
            ({"rerank": {"field": "nope"}}, "no field 'nope'"),
            ({"fields": ["dense"]}, "re-rank field"),
            ({"rerank": {"depth": 0}}, "depth"),
            ({"rerank": {"weight": 1.5}}, "weight"),
            ({"rerank": {"weight": "high"}}, "weight"),
            ({"rerank": {"depth": 100, "extra": 1}}, "extra"),
            ({"rerank": True}, "rerank"),
            ({"fusion": {"method": "rrf", "weights": {"dense": 1}}}, "no field 'dense'"),
        ]
        for body, words in cases:
            r = c.post("/v1/collections/r/search", json={"query": QUERY, **body})
            assert r.status_code == 422 and words in r.text, (body, r.text)
        vector = {"indices": [1], "values": [1.0]}
        r = c.post(
            "/v1/collections/r/search",
            json={"vector": vector, "fields": ["bm25"], "rerank": {}},
        )
        assert r.status_code == 422 and "give 'query'" in r.text, r.text
        r = c.post("/v1/collections/r/explain", json={"query": QUERY, "rerank": {}})
        assert r.status_code == 422 and "explain.rerank" in r.text, r.text
        # collections that cannot re-rank, or would be built wrong
        bad = [
            ({"name": "d1", "encoder": "minilm-dense"}, "dense model for re-ranking"),
            ({"name": "d2", "fields": {"dense": {"encoder": "minilm-dense"}}}, "add a field"),
            (
                {
                    "name": "d3",
                    "fields": {
                        "bm25": {"encoder": "bm25"},
                        "dense": {"encoder": "minilm-dense", "index_params": {"n_postings": 9}},
                    },
                },
                "no index",
            ),
        ]
        for body, words in bad:
            r = c.post("/v1/collections", json=body)
            assert r.status_code == 422 and words in r.text, (body, r.text)
        assert (
            c.post("/v1/collections", json={"name": "plain", "encoder": "splade-tiny"}).status_code
            == 201
        )
        r = c.post("/v1/collections/plain/search", json={"query": QUERY, "rerank": {}})
        assert r.status_code == 422 and "'rerank'" in r.text, r.text
        two = {"bm25": {"encoder": "bm25"}, "splade": {"encoder": "splade-tiny"}}
        assert c.post("/v1/collections", json={"name": "nodense", "fields": two}).status_code == 201
        r = c.post("/v1/collections/nodense/search", json={"query": QUERY, "rerank": {}})
        assert r.status_code == 422 and "no re-rank field" in r.text, r.text
        assert _search(c, {"k": 3, "rerank": {}})["hits"]  # still serving


def test_rerank_arithmetic_is_the_eval_one() -> None:
    """The service's and ``lsr eval``'s re-rank are one function: min-max of each list,
    ``(1 - w)`` and ``w``, ties by id."""
    from app.jobs.evaluation.hybrid import rerank_run

    ids, fused, cosines = ["a", "b", "c"], [3.0, 2.0, 1.0], [0.1, 0.9, 0.5]
    out = dict(rerank(ids, fused, cosines, 0.25))
    assert out == pytest.approx({"a": 0.75, "b": 0.375 + 0.25, "c": 0.0 + 0.25 * 0.5})
    assert rerank_run({"q": (ids, fused, cosines)}, 0.25) == {"q": out}
    assert [d for d, _ in rerank(ids, fused, cosines, 1.0)] == ["b", "c", "a"]
    assert np.isclose(dict(rerank(ids, fused, cosines, 0.0))["a"], 1.0)
