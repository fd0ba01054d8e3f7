"""Collections with several sparse fields (splade-tiny + live BM25) over the API: create,
write, search (fused, per-request fusion, restricted to fields, filtered, by vector), explain,
delete, restart; the default configuration; and bad input refused without side effects."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.services.fusion import FusionSpec, fuse
from tests.app.conftest import make_settings

HYBRID = {
    "name": "h",
    "fields": {"splade": {"encoder": "splade-tiny"}, "bm25": {"encoder": "bm25"}},
    "fusion": {"method": "linear", "weights": {"splade": 0.3, "bm25": 0.7}},
}
TEXTS = {
    "w": "The weather is lovely today.",
    "s": "It's so sunny outside!",
    "d": "He drove to the stadium.",
    "r": "Rain and weather forecasts for the stadium.",
    "h": "Hypersonic boundary layer transition on a cooled wing.",
    "e": "",
}


def _docs() -> list[dict]:
    return [
        {"id": k, "text": v, "metadata": {"lang": "de" if k in "rh" else "en"}}
        for k, v in TEXTS.items()
    ]


@pytest.fixture
def hybrid(client: TestClient, splade_available: str) -> TestClient:
    r = client.post("/v1/collections", json=HYBRID)
    assert r.status_code == 201, r.text
    r = client.post("/v1/collections/h/documents", json={"documents": _docs()})
    assert r.status_code == 201, r.text
    return client


def _search(c: TestClient, **body: object) -> dict:
    r = c.post("/v1/collections/h/search", json={"k": 5, **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_create_describes_each_field_and_the_fusion(hybrid: TestClient) -> None:
    info = hybrid.get("/v1/collections/h").json()
    assert info["documents"] == len(TEXTS)
    splade, bm25 = info["fields"]["splade"], info["fields"]["bm25"]
    assert (splade["encoder"], splade["offset"], splade["width"]) == ("splade-tiny", 0, 30522)
    assert (bm25["encoder"], bm25["offset"]) == ("bm25", 30522)
    assert info["dim"] == 30522 + bm25["width"]
    assert info["fusion"] == {
        "method": "linear",
        "weights": {"splade": 0.3, "bm25": 0.7},
        "rrf_k": 60,
    }
    doc = hybrid.get("/v1/collections/h/documents/h").json()
    assert doc["fields"]["splade"]["indices"] and doc["fields"]["bm25"]["indices"]
    assert max(doc["fields"]["splade"]["indices"]) < 30522  # each field in its own columns
    empty = hybrid.get("/v1/collections/h/documents/e").json()
    assert empty["fields"] == {"splade": {"indices": [], "values": []},
                               "bm25": {"indices": [], "values": []}}  # fmt: skip


def test_fused_search_is_the_fusion_of_the_field_searches(hybrid: TestClient) -> None:
    """The fused answer equals fusion.fuse of each field searched alone (100 deep), for the
    collection's default fusion and for a per-request one; timings show each field."""
    query = "weather at the stadium"
    runs = {}
    for name in ("splade", "bm25"):
        body = _search(hybrid, query=query, k=100, fields=[name])
        assert list(body["timings_ms"]["fields"]) == [name]
        runs[name] = ([h["id"] for h in body["hits"]], [h["score"] for h in body["hits"]])
    assert runs["bm25"][0][:2] in (["r", "d"], ["r", "w"])  # both query words vs one
    for fusion, spec in (
        (None, FusionSpec("linear", (0.3, 0.7))),
        ({"method": "rrf"}, FusionSpec("rrf", (1.0, 1.0))),
        ({"method": "rrf", "weights": {"bm25": 2}, "rrf_k": 10}, FusionSpec("rrf", (0.0, 2.0), 10)),
        ({"method": "linear", "weights": {"splade": 1, "bm25": 1}}, FusionSpec("linear", (1, 1))),
    ):
        body = _search(hybrid, query=query, k=4, **({"fusion": fusion} if fusion else {}))
        ranked = [r for r, w in zip((runs["splade"], runs["bm25"]), spec.weights, strict=True)]
        expected = fuse(ranked, spec, depth=4)
        if spec.weights[0] == 0:  # a field of weight 0 is not searched at all
            expected = fuse([runs["bm25"]], FusionSpec(spec.method, (2.0,), spec.rrf_k), depth=4)
            assert list(body["timings_ms"]["fields"]) == ["bm25"]
        else:
            assert set(body["timings_ms"]["fields"]) == {"splade", "bm25"}
        assert [h["id"] for h in body["hits"]] == [d for d, _ in expected], fusion
        for hit, (_, score) in zip(body["hits"], expected, strict=True):
            assert hit["score"] == pytest.approx(score), fusion


def test_a_search_restricted_to_one_field_answers_its_own_scores(hybrid: TestClient) -> None:
    body = _search(hybrid, query="hypersonic wing", fields=["bm25"])
    assert [h["id"] for h in body["hits"]] == ["h"]
    assert body["hits"][0]["score"] > 1.0  # a BM25 score (two rare terms), not a fused one
    assert body["certified"]  # the mutable segment is scored exactly


def test_filters_apply_to_every_field(hybrid: TestClient) -> None:
    body = _search(hybrid, query="weather stadium", filter={"lang": "en"})
    ids = [h["id"] for h in body["hits"]]
    assert ids and "r" not in ids and "h" not in ids
    assert all(h["metadata"]["lang"] == "en" for h in body["hits"])


def test_explain_shows_each_fields_rank_score_and_share(hybrid: TestClient) -> None:
    r = hybrid.post("/v1/collections/h/explain", json={"query": "weather stadium", "k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    fused = _search(hybrid, query="weather stadium", k=3)["hits"]
    assert [h["id"] for h in body["hits"]] == [h["id"] for h in fused]
    top = body["hits"][0]
    assert top["id"] == "r"
    for name in ("splade", "bm25"):
        part = top["fields"][name]
        assert part["rank"] == 1 and part["terms"]
        assert part["score"] == pytest.approx(sum(t["contribution"] for t in part["terms"]),
                                              rel=1e-3)  # fmt: skip
    assert {t["token"] for t in top["fields"]["bm25"]["terms"]} == {"weather", "stadium"}
    for hit in body["hits"]:
        shares = sum(p["contribution"] for p in hit["fields"].values())
        assert hit["score"] == pytest.approx(shares)
    assert set(body["fields"]) == {"splade", "bm25"}  # the query's terms per field
    r = hybrid.post(
        "/v1/collections/h/explain", json={"query": "weather stadium", "ids": ["h"], "k": 3}
    )
    part = r.json()["hits"][0]["fields"]["bm25"]
    assert part["rank"] is None and part["score"] == 0.0 and part["contribution"] == 0.0


def test_vector_search_names_its_field(hybrid: TestClient) -> None:
    r = hybrid.post("/v1/collections/h/search", json={"vector": {"wing": 1.0}, "k": 3})
    assert r.status_code == 422 and "name that field" in r.text
    body = _search(hybrid, vector={"wing": 1.0}, fields=["bm25"])
    assert [h["id"] for h in body["hits"]] == ["h"]
    body = _search(hybrid, vector={"wing": 2.0}, fields=["splade"])
    assert body["hits"][0]["id"] == "h"


def test_delete_removes_from_every_field_and_all_survives_restart(
    data_dir: Path, splade_available: str
) -> None:
    settings = make_settings(data_dir, flat_segment_rows=2)
    with TestClient(create_app(settings)) as c:
        assert c.post("/v1/collections", json=HYBRID).status_code == 201
        assert c.post("/v1/collections/h/documents", json={"documents": _docs()}).status_code == 201
        assert c.post("/v1/collections/h/seal").json()["sealed"]
        segments = c.get("/v1/collections/h/stats").json()["segments"]
        assert segments[0]["fields_indexed"] == ["splade", "bm25"]
        r = c.request("DELETE", "/v1/collections/h/documents", json={"ids": ["r"]})
        assert r.json()["deleted"] == 1
        more = [{"id": "x", "text": "A stadium roof in the rain."}]
        assert c.post("/v1/collections/h/documents", json={"documents": more}).status_code == 201
        before = {
            name: _search(c, query="rain weather stadium", fields=[name], mode="exact")
            for name in ("splade", "bm25")
        }
        fused = _search(c, query="rain weather stadium", mode="exact")
    for name, body in before.items():
        assert "r" not in [h["id"] for h in body["hits"]], name
        assert body["hits"][0]["id"] == "x", name
    with TestClient(create_app(settings)) as c:
        assert c.get("/v1/collections/h").json()["documents"] == len(TEXTS)
        assert c.get("/v1/collections/h/documents/r").status_code == 404
        for name, body in before.items():
            again = _search(c, query="rain weather stadium", fields=[name], mode="exact")
            assert again["hits"] == body["hits"], name
        assert _search(c, query="rain weather stadium", mode="exact")["hits"] == fused["hits"]


def test_batch_search_on_fields(hybrid: TestClient) -> None:
    r = hybrid.post(
        "/v1/collections/h/search/batch",
        json={"searches": [{"query": "sunny", "k": 2}, {"query": "wing", "fields": ["bm25"]}]},
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0]["hits"][0]["id"] == "s" and results[1]["hits"][0]["id"] == "h"


BAD_SEARCHES = [
    ({"fields": ["nope"]}, "no field 'nope'"),
    ({"fields": []}, "fields"),
    ({"fields": ["bm25", "bm25"]}, "named twice"),
    ({"fusion": {"method": "max"}}, "method"),
    ({"fusion": {"weights": {"bm25": -1}}}, "weights"),
    ({"fusion": {"weights": {"bm25": 0, "splade": 0}}}, "at least one weight"),
    ({"fusion": {"weights": {"title": 1}}}, "no field 'title'"),
    ({"fusion": {"rrf_k": -3}}, "rrf_k"),
    ({"fusion": {"weights": {"bm25": "x"}}}, "weights"),
]


@pytest.mark.parametrize(("extra", "says"), BAD_SEARCHES)
def test_bad_field_and_fusion_input_is_a_422(hybrid: TestClient, extra: dict, says: str) -> None:
    for route in ("search", "explain"):
        r = hybrid.post(f"/v1/collections/h/{route}", json={"query": "weather", **extra})
        assert r.status_code == 422, (route, r.text)
        assert says in r.text, r.text


def test_nan_weights_are_refused(hybrid: TestClient) -> None:
    body = '{"query": "weather", "fusion": {"weights": {"bm25": NaN}}}'
    r = hybrid.post(
        "/v1/collections/h/search", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text


BAD_CREATES = [
    ({"fields": {}}, "at least one field"),
    ({"fields": {"a b": {"encoder": "bm25"}}}, "field name"),
    ({"fields": {"x": {"encoder": "none"}}}, "needs an encoder"),
    ({"fields": {"x": {"encoder": "no-such-model"}}}, "not allowed"),
    ({"fields": {"x": {"encoder": "bm25"}}, "encoder": "splade-tiny"}, "not both"),
    ({"fields": {"x": {"encoder": "bm25"}}, "fusion": {"weights": {"y": 1}}}, "no field 'y'"),
    ({"fields": {"x": {"encoder": "bm25"}}, "fusion": {"weights": {"x": 0}}}, "at least one"),
    ({"fields": {"x": {"encoder": "bm25", "b": 2}}}, "b"),
    ({"fields": {"x": {"encoder": "bm25", "index_params": {"bogus": 1}}}}, "fields.x.index_params"),
    ({"fields": {"x": {"encoder": "bm25"}}, "target_recall": 0.9}, "target_recall"),
    ({"encoder": "none", "dim": 4, "fusion": {"method": "rrf"}}, "several"),
    ({"encoder": "bm25"}, "keeps live as a field"),
    ({"fields": {"x": {"encoder": "bm25", "dim": 2**22 + 1}}}, "dim"),
]


@pytest.mark.parametrize(("body", "says"), BAD_CREATES)
def test_bad_field_specs_are_a_422_and_create_nothing(
    client: TestClient, body: dict, says: str
) -> None:
    r = client.post("/v1/collections", json={"name": "n", **body})
    assert r.status_code == 422, r.text
    assert says in r.text, r.text
    assert client.get("/v1/collections/n").status_code == 404


def test_bad_requests_leave_the_collection_as_it_was(hybrid: TestClient) -> None:
    """Refused writes and searches change nothing: same documents, same BM25 statistics."""
    before = hybrid.get("/v1/collections/h/stats").json()
    for body in (
        {"documents": [{"id": "v", "vector": {"indices": [1], "values": [1.0]}}]},
        {"documents": [{"id": "z", "text": "fine"}, {"id": "z", "text": "twice"}]},
    ):
        r = hybrid.post("/v1/collections/h/documents", json=body)
        assert r.status_code == 422, r.text
    r = hybrid.post("/v1/collections/h/documents", json={"documents": [{"id": "w", "text": "a"}]})
    assert r.status_code == 409
    for extra, _ in BAD_SEARCHES:
        hybrid.post("/v1/collections/h/search", json={"query": "weather", **extra})
    after = hybrid.get("/v1/collections/h/stats").json()
    assert after["documents"] == before["documents"]
    assert after["bm25"] == before["bm25"] and after["wal_bytes"] == before["wal_bytes"]


def test_a_recall_target_is_for_single_encoder_collections(hybrid: TestClient) -> None:
    r = hybrid.patch("/v1/collections/h", json={"target_recall": 0.9})
    assert r.status_code == 422 and "per request" in r.text, r.text
    assert hybrid.get("/v1/collections/h").json()["target_recall"] is None
    body = _search(hybrid, query="weather", recall=0.9)  # per request: each field's own
    assert body["hits"] and set(body["timings_ms"]["fields"]) == {"splade", "bm25"}


def test_fields_and_fusion_on_a_single_encoder_collection_are_a_422(
    client: TestClient, vec_collection: str
) -> None:
    for extra in ({"fields": ["bm25"]}, {"fusion": {"method": "rrf"}}):
        r = client.post(
            f"/v1/collections/{vec_collection}/search",
            json={"vector": {"indices": [1], "values": [1.0]}, **extra},
        )
        assert r.status_code == 422 and "one encoder" in r.text, r.text


def test_default_collection_is_splade_and_bm25_fused_linear(
    client: TestClient, splade_available: str
) -> None:
    """Neither encoder nor fields: the configuration selected on SciFact train (README
    "Hybrid evaluation"), the same whatever extras are installed (no re-rank field: its dense
    model is an extra); naming the encoder keeps the single-encoder collection."""
    r = client.post("/v1/collections", json={"name": "d"})
    assert r.status_code == 201, r.text
    info = r.json()
    assert {n: f["encoder"] for n, f in info["fields"].items()} == {
        "splade": "splade-tiny",
        "bm25": "bm25",
    }
    assert info["fusion"]["method"] == "linear"
    assert info["fusion"]["weights"] == {"splade": 0.3, "bm25": 0.7}
    assert info["rerank"] is None
    r = client.post("/v1/collections", json={"name": "s", "encoder": "splade-tiny"})
    assert r.status_code == 201 and r.json()["encoder"] == "splade-tiny"
    assert r.json()["fields"] is None and r.json()["dim"] == 30522


def test_a_job_writes_every_field(data_dir: Path, shared_data: Path, splade_available: str) -> None:
    """A background job over Cranfield's texts fills both fields (and BM25's statistics);
    a corpus of vectors is refused on a multi-field collection."""
    from tests.app.conftest import wait_for_job

    own = data_dir / "import"
    own.mkdir(parents=True)
    (own / "vectors.jsonl").write_text('{"id": "a", "vector": {"indices": [1], "values": [1.0]}}\n')
    settings = make_settings(data_dir, import_roots=f"{shared_data},{own}")
    with TestClient(create_app(settings)) as c:
        assert c.post("/v1/collections", json=HYBRID).status_code == 201
        r = c.post("/v1/collections/h/jobs", json={"source": str(own / "vectors.jsonl")})
        assert r.status_code == 422 and "corpus of texts" in r.text, r.text
        source = str(shared_data / "cranfield")
        r = c.post(
            "/v1/collections/h/jobs", json={"source": source, "batch_size": 50, "limit": 150}
        )
        assert r.status_code in (200, 201, 202), r.text
        job = wait_for_job(c, r.json()["id"])
        assert job["state"] == "done" and job["done"] == 150, job
        stats = c.get("/v1/collections/h/stats").json()
        assert stats["documents"] == 150 and stats["bm25"]["bm25"]["documents"] == 150
        for name in ("splade", "bm25"):
            hits = _search(c, query="boundary layer in supersonic flow", fields=[name])["hits"]
            assert len(hits) == 5, name


def test_warm_up_readies_every_field(data_dir: Path, splade_available: str, caplog) -> None:
    """At start-up each field's encoder is loaded and each field index searched once."""
    import logging

    from tests.app.conftest import wait_ready

    with TestClient(create_app(make_settings(data_dir, flat_segment_rows=2))) as c:
        assert c.post("/v1/collections", json=HYBRID).status_code == 201
        assert c.post("/v1/collections/h/documents", json={"documents": _docs()}).status_code == 201
        assert c.post("/v1/collections/h/seal").json()["sealed"]
    with caplog.at_level(logging.INFO, logger="app.warmup"):
        with TestClient(create_app(make_settings(data_dir, warmup=True))) as c:
            ready = wait_ready(c)
            assert ready["collections"] == 1 and not ready["collections_unavailable"]
            state = c.app.state.lsr
            assert "splade-tiny" in state.encoders.loaded()
    messages = [r.getMessage() for r in caplog.records]
    assert any("encoder of h ready" in m for m in messages), messages
    assert any("search kernel of h ready" in m for m in messages), messages
    assert not any("failed" in m or "unavailable" in m for m in messages), messages


def test_explain_shows_what_each_fields_index_did(data_dir: Path, splade_available: str) -> None:
    """Per field and segment: the setting it ran and the index's own account; a query term
    that only the mutable segment holds reaches the sealed segment's index as no term."""
    with TestClient(create_app(make_settings(data_dir, flat_segment_rows=2))) as c:
        assert c.post("/v1/collections", json=HYBRID).status_code == 201
        assert c.post("/v1/collections/h/documents", json={"documents": _docs()}).status_code == 201
        assert c.post("/v1/collections/h/seal").json()["sealed"]
        more = [{"id": "z", "text": "zeppelin hangar"}]
        assert c.post("/v1/collections/h/documents", json={"documents": more}).status_code == 201
        for query, top in (("weather stadium", "r"), ("zeppelin", "z")):
            r = c.post("/v1/collections/h/explain", json={"query": query, "k": 2})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["hits"][0]["id"] == top
            parts = {(s["field"], s["kind"]): s for s in body["segments"]}
            kinds = ("sealed", "mutable")
            assert set(parts) == {(f, k) for f in ("splade", "bm25") for k in kinds}
            for field in ("splade", "bm25"):
                sealed = parts[(field, "sealed")]
                assert sealed["setting"]["index"] is True and sealed["index"] is not None
                assert parts[(field, "mutable")]["setting"] == {"mode": "exact", "index": False}
            if query == "zeppelin":  # no document of the sealed segment holds the term
                assert set(parts[("bm25", "sealed")]["index"]["doc_ids"]) <= {None}


def test_each_field_has_its_own_index_and_query_params(
    data_dir: Path, splade_available: str
) -> None:
    """A field's index_params build its index; its query_params are its searches' default
    (the collection's own apply to the fields that set none); a request's knob overrides."""
    body = {
        "name": "p",
        "query_params": {"heap_factor": 0.9},
        "fields": {
            "splade": {"encoder": "splade-tiny", "query_params": {"query_cut": 3}},
            "bm25": {"encoder": "bm25", "index_params": {"n_postings": 7}},
        },
    }
    with TestClient(create_app(make_settings(data_dir, flat_segment_rows=2))) as c:
        assert c.post("/v1/collections", json=body).status_code == 201
        assert c.post("/v1/collections/p/documents", json={"documents": _docs()}).status_code == 201
        assert c.post("/v1/collections/p/seal").json()["sealed"]
        sealed = c.app.state.lsr.registry.get("p").sealed_segments()[0]
        assert sealed.indexes["bm25"].params.n_postings == 7
        assert sealed.indexes["splade"].params.n_postings == 3500  # the index's default
        for extra, cut in (({}, 3), ({"query_cut": 5}, 5)):
            r = c.post("/v1/collections/p/explain", json={"query": "weather", "k": 2, **extra})
            settings = {s["field"]: s["setting"] for s in r.json()["segments"] if s["index"]}
            assert settings["splade"]["query_cut"] == cut
            assert settings["splade"]["heap_factor"] == pytest.approx(0.9)
            assert settings["bm25"]["heap_factor"] == pytest.approx(0.9)
            if not extra:
                assert settings["bm25"]["query_cut"] == 10  # the index's default
