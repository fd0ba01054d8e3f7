"""REST round trips and every bad-input path through the in-process client."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import DIM, make_settings, random_docs, random_query
from tests.conftest import PATIENCE_S


def _docs(client: TestClient, name: str, docs: list[dict]) -> None:
    r = client.post(f"/v1/collections/{name}/documents", json={"documents": docs})
    assert r.status_code == 201, r.text


def test_collection_lifecycle(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    r = client.post("/v1/collections", json={"name": "a", "encoder": "none", "dim": 10})
    assert r.status_code == 201 and r.json()["dim"] == 10
    assert (
        client.post("/v1/collections", json={"name": "a", "encoder": "none", "dim": 10}).status_code
        == 409
    )
    assert [c["name"] for c in client.get("/v1/collections").json()["collections"]] == ["a"]
    assert client.get("/v1/collections/a").json()["documents"] == 0
    assert client.delete("/v1/collections/a").status_code == 204
    assert client.get("/v1/collections/a").status_code == 404
    assert client.delete("/v1/collections/a").status_code == 404


def test_documents_round_trip(client: TestClient, vec_collection: str) -> None:
    docs = random_docs(30, seed=1)
    _docs(client, vec_collection, docs)
    got = client.get(f"/v1/collections/{vec_collection}/documents/doc-3").json()
    assert got["metadata"] == docs[3]["metadata"]
    assert got["vector"]["indices"] == docs[3]["vector"]["indices"]
    # the top hit of a document's own vector is itself (weights are positive)
    r = client.post(
        f"/v1/collections/{vec_collection}/search", json={"vector": docs[5]["vector"], "k": 3}
    )
    body = r.json()
    assert r.status_code == 200 and body["took_ms"] >= 0
    assert body["hits"][0]["id"] == "doc-5" and body["hits"][0]["metadata"] == docs[5]["metadata"]
    # token-map vectors: column numbers as strings for encoder "none"
    token_map = {
        str(c): v
        for c, v in zip(docs[5]["vector"]["indices"], docs[5]["vector"]["values"], strict=True)
    }
    r2 = client.post(f"/v1/collections/{vec_collection}/search", json={"vector": token_map, "k": 3})
    assert r2.json()["hits"] == body["hits"]
    # delete, then the next search no longer sees it
    r = client.request(
        "DELETE", f"/v1/collections/{vec_collection}/documents", json={"ids": ["doc-5", "nope"]}
    )
    assert r.json() == {"deleted": 1, "ids": ["doc-5"], "not_found": ["nope"]}
    r = client.post(f"/v1/collections/{vec_collection}/search", json={"vector": docs[5]["vector"]})
    assert "doc-5" not in [h["id"] for h in r.json()["hits"]]
    assert client.get(f"/v1/collections/{vec_collection}/documents/doc-5").status_code == 404
    # add refuses an existing id; upsert replaces it
    dup = [{"id": "doc-1", "vector": {"indices": [0], "values": [1.0]}}]
    assert (
        client.post(
            f"/v1/collections/{vec_collection}/documents", json={"documents": dup}
        ).status_code
        == 409
    )
    assert (
        client.put(
            f"/v1/collections/{vec_collection}/documents", json={"documents": dup}
        ).status_code
        == 200
    )
    got = client.get(f"/v1/collections/{vec_collection}/documents/doc-1").json()
    assert got["vector"] == {"indices": [0], "values": [1.0]} and got["metadata"] is None
    stats = client.get(f"/v1/collections/{vec_collection}/stats").json()
    assert stats["documents"] == 29


def test_ids_with_slashes_and_unicode(client: TestClient, vec_collection: str) -> None:
    doc = {"id": "a/b c/ü", "vector": {"indices": [1], "values": [1.0]}}
    _docs(client, vec_collection, [doc])
    assert (
        client.get(f"/v1/collections/{vec_collection}/documents/a/b c/ü").json()["id"] == "a/b c/ü"
    )


def test_batch_search_explain_and_filters(client: TestClient, vec_collection: str) -> None:
    docs = random_docs(80, seed=2)
    _docs(client, vec_collection, docs)
    queries = [{"vector": random_query(s), "k": 5} for s in range(4)]
    r = client.post(f"/v1/collections/{vec_collection}/search/batch", json={"searches": queries})
    assert r.status_code == 200
    singles = [
        client.post(f"/v1/collections/{vec_collection}/search", json=q).json()["hits"]
        for q in queries
    ]
    assert [res["hits"] for res in r.json()["results"]] == singles
    # filters: equality and in
    q = {"vector": random_query(9), "k": 50}
    for flt, ok in (
        ({"group": 1}, lambda m: m["group"] == 1),
        (
            {"lang": {"in": ["de"]}, "group": {"in": [0, 3]}},
            lambda m: m["lang"] == "de" and m["group"] in (0, 3),
        ),
    ):
        hits = client.post(
            f"/v1/collections/{vec_collection}/search", json={**q, "filter": flt}
        ).json()["hits"]
        all_hits = client.post(f"/v1/collections/{vec_collection}/search", json=q).json()["hits"]
        assert hits and all(ok(h["metadata"]) for h in hits)
        assert hits == [h for h in all_hits if ok(h["metadata"])][: len(hits)]
    # explain: contributions add up to the hit's score
    r = client.post(
        f"/v1/collections/{vec_collection}/explain", json={"vector": random_query(4), "k": 3}
    )
    body = r.json()
    assert r.status_code == 200 and body["hits"]
    for hit in body["hits"]:
        assert (
            hit["terms"] and abs(sum(t["contribution"] for t in hit["terms"]) - hit["score"]) < 1e-3
        )
    r = client.post(
        f"/v1/collections/{vec_collection}/explain",
        json={"vector": random_query(4), "ids": ["doc-0"]},
    )
    assert [h["id"] for h in r.json()["hits"]] == ["doc-0"]


BAD_SEARCHES = [
    ({"k": 3}, 422),  # neither query nor vector
    ({"vector": {"indices": [1], "values": [1.0]}, "query": "x"}, 422),  # both
    ({"vector": {"indices": [1], "values": [1.0]}, "k": 0}, 422),
    ({"vector": {"indices": [1], "values": [1.0]}, "k": 100_000}, 422),
    ({"vector": {"indices": [1], "values": [1.0]}, "k": "ten"}, 422),
    ({"vector": {"indices": [1, 2], "values": [1.0]}}, 422),  # length mismatch
    ({"vector": {"indices": [DIM], "values": [1.0]}}, 422),  # out of range
    ({"vector": {"indices": [-1], "values": [1.0]}}, 422),
    ({"vector": {"indices": [1], "values": [-1.0]}}, 422),  # negative weight
    ({"vector": {"indices": [1], "values": [1e9]}}, 422),  # over float16
    ({"vector": {"indices": [1, 1], "values": [1.0, 2.0]}}, 422),  # duplicates
    ({"vector": {"indices": [], "values": []}}, 422),  # empty
    ({"vector": {"abc": 1.0}}, 422),  # unknown token
    ({"vector": {"indices": ["a"], "values": [1.0]}}, 422),
    ({"vector": [1, 2, 3]}, 422),
    ({"query": "text on a vectors-only collection"}, 422),
    ({"query": ""}, 422),
    ({"vector": {"indices": [1], "values": [1.0]}, "filter": {"g": {"gt": 1}}}, 422),
    ({"vector": {"indices": [1], "values": [1.0]}, "filter": {"g": {"in": []}}}, 422),
    ({"vector": {"indices": [1], "values": [1.0]}, "filter": {"g": [1]}}, 422),
    ({"vector": {"indices": [1], "values": [1.0]}, "heap_factor": -1}, 422),
    ({"vector": {"indices": [1], "values": [1.0]}, "unknown": 1}, 422),
]


@pytest.mark.parametrize(("body", "status"), BAD_SEARCHES)
def test_bad_searches(client: TestClient, vec_collection: str, body: dict, status: int) -> None:
    r = client.post(f"/v1/collections/{vec_collection}/search", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"vector": ',
        b"not json",
        b'{"vector": {"indices": [1], "values": [NaN]}}',
        b'{"vector": {"1": Infinity}}',
        b"[]",
        b"",
    ],
)
def test_malformed_and_non_finite_json(client: TestClient, vec_collection: str, raw: bytes) -> None:
    r = client.post(
        f"/v1/collections/{vec_collection}/search",
        content=raw,
        headers={"content-type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text
    assert r.json()["error"]["code"] in ("malformed_json", "invalid_request")


BAD_WRITES = [
    {"documents": []},
    {"documents": [{"id": "x"}]},  # no text, no vector
    {"documents": [{"id": "", "vector": {"indices": [1], "values": [1.0]}}]},
    {"documents": [{"id": "x", "text": "hello"}]},  # text needs an encoder
    {"documents": [{"id": "x", "vector": {"indices": [1], "values": [float("nan")]}}]},
    {"documents": [{"id": "x", "vector": {"indices": [1], "values": [1.0]}, "metadata": [1]}]},
    {
        "documents": [
            {"id": "y", "vector": {"indices": [1], "values": [1.0]}},
            {"id": "y", "vector": {"indices": [2], "values": [1.0]}},
        ]
    },  # duplicate id
    {
        "documents": [
            {"id": "ok", "vector": {"indices": [1], "values": [1.0]}},
            {"id": "bad", "vector": {"indices": [DIM + 5], "values": [1.0]}},
        ]
    },
    {"documents": [{"id": 5, "vector": {"indices": [1], "values": [1.0]}}]},
    {"docs": []},
    {
        "documents": [
            {
                "id": "x",
                "vector": {"indices": [1], "values": [1.0]},
                "metadata": {"m": float("nan")},
            }
        ]
    },
    {
        "documents": [
            {
                "id": "x",
                "vector": {"indices": [1], "values": [1.0]},
                "metadata": {"m": [float("inf")]},
            }
        ]
    },
]


@pytest.mark.parametrize("body", BAD_WRITES)
def test_bad_writes_are_refused_whole(client: TestClient, vec_collection: str, body: dict) -> None:
    import json

    raw = json.dumps(body, allow_nan=True).encode()
    r = client.post(
        f"/v1/collections/{vec_collection}/documents",
        content=raw,
        headers={"content-type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text
    assert client.get(f"/v1/collections/{vec_collection}").json()["documents"] == 0


@pytest.mark.parametrize("name", ["..", ".hidden", "a/b", "a" * 65, "sp ace", "-x", "x%2F..%2Fy"])
def test_bad_collection_names(client: TestClient, name: str) -> None:
    r = client.post("/v1/collections", json={"name": name, "encoder": "none", "dim": 4})
    assert r.status_code == 422
    assert client.get(f"/v1/collections/{name}").status_code in (404, 422)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "n", "encoder": "none"},  # dim missing
        {"name": "n", "encoder": "none", "dim": 0},
        {"name": "n", "encoder": "no-such-model-here", "dim": 4},
        {"name": "n", "encoder": "/etc"},  # a folder on the server: not unless LSR_ENCODERS allows
        {"name": "n", "encoder": "org/model"},  # no downloads unless allowed
        {"name": "n", "encoder": "x" * 256},
        {"name": "n", "encoder": "none", "dim": 4, "index_params": {"bogus": 1}},
        {"name": "n", "encoder": "none", "dim": 4, "index_params": {"summary_energy": 5}},
        {"name": "n", "encoder": "none", "dim": 4, "query_params": {"heap_factor": "x"}},
    ],
)
def test_bad_collection_configs(client: TestClient, body: dict) -> None:
    r = client.post("/v1/collections", json=body)
    assert r.status_code == 422, r.text
    assert client.get("/v1/collections").json()["collections"] == []


def test_unknown_collection_everywhere(client: TestClient) -> None:
    vec = {"vector": {"indices": [1], "values": [1.0]}}
    assert client.post("/v1/collections/nope/search", json=vec).status_code == 404
    assert (
        client.post(
            "/v1/collections/nope/documents", json={"documents": [{"id": "a", **vec}]}
        ).status_code
        == 404
    )
    assert client.get("/v1/collections/nope/documents/a").status_code == 404
    assert client.get("/v1/collections/nope/stats").status_code == 404
    assert client.post("/v1/collections/nope/jobs", json={"source": "/tmp"}).status_code == 404
    assert client.get("/v1/nothing-here").status_code == 404


def test_limits(data_dir: Path) -> None:
    settings = make_settings(data_dir, max_batch=5, max_request_bytes=4096, max_k=20)
    with TestClient(create_app(settings)) as c:
        c.post("/v1/collections", json={"name": "v", "encoder": "none", "dim": DIM})
        r = c.post("/v1/collections/v/documents", json={"documents": random_docs(6, seed=0)})
        assert r.status_code == 422 and "limit" in r.json()["error"]["message"]
        r = c.post(
            "/v1/collections/v/documents",
            content=b"{" + b" " * 5000 + b"}",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413
        r = c.post("/v1/collections/v/search", json={"vector": random_query(0), "k": 21})
        assert r.status_code == 422
        assert c.get("/v1/collections/v").json()["documents"] == 0


def test_api_keys(data_dir: Path) -> None:
    with TestClient(create_app(make_settings(data_dir, api_keys="k1,k2"))) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        assert c.get("/v1/collections").status_code == 401
        assert c.get("/v1/collections", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.get("/v1/collections", headers={"Authorization": "Basic k1"}).status_code == 401
        assert c.get("/metrics").status_code == 401
        ok = {"Authorization": "Bearer k2"}
        assert c.get("/v1/collections", headers=ok).status_code == 200
        r = c.post("/v1/collections", json={"name": "v", "encoder": "none", "dim": 4}, headers=ok)
        assert r.status_code == 201


def test_metrics_and_openapi(client: TestClient, vec_collection: str) -> None:
    client.post(f"/v1/collections/{vec_collection}/search", json={"vector": random_query(1)})
    text = client.get("/metrics").text
    assert (
        'lsr_http_requests_total{method="POST",route="/v1/collections/{name}/search",status="200"}'
        in text
    )
    assert 'lsr_collection_documents{collection="vecs"} 0.0' in text
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/collections",
        "/v1/collections/{name}",
        "/v1/collections/{name}/documents",
        "/v1/collections/{name}/search",
        "/v1/collections/{name}/explain",
        "/v1/collections/{name}/search/batch",
        "/v1/jobs/{job_id}",
        "/healthz",
        "/readyz",
    ):
        assert path in paths


def test_background_seal_keeps_results(data_dir: Path) -> None:
    import time

    settings = make_settings(data_dir, seal_rows=40, flat_segment_rows=10, max_segments=2)
    with TestClient(create_app(settings)) as c:
        c.post(
            "/v1/collections",
            json={
                "name": "v",
                "encoder": "none",
                "dim": DIM,
                "index_params": {"n_postings": None, "summary_energy": 1.0},
                "query_params": {"query_cut": 1000, "heap_factor": 0.0},
            },
        )
        docs = random_docs(150, seed=5)
        queries = [{"vector": random_query(s), "k": 10, "exact": True} for s in range(5)]
        for i in range(0, 150, 30):
            _docs(c, "v", docs[i : i + 30])
        want = [c.post("/v1/collections/v/search", json=q).json()["hits"] for q in queries]
        # On a cold clone the first seal compiles the index kernels (tens of s).
        deadline = time.monotonic() + PATIENCE_S
        while time.monotonic() < deadline:
            stats = c.get("/v1/collections/v/stats").json()
            sealed = [s for s in stats["segments"] if s["kind"] == "sealed"]
            merged = sealed and len(sealed) <= 2 and stats["segments"][-1]["rows"] < 40
            if merged and any(s["indexed"] for s in sealed):
                break
            time.sleep(0.2)
        assert any(s["indexed"] for s in sealed)
        for q, w in zip(queries, want, strict=True):
            got = c.post("/v1/collections/v/search", json={**q, "exact": False}).json()["hits"]
            assert [(h["id"], round(h["score"], 3)) for h in got] == [
                (h["id"], round(h["score"], 3)) for h in w
            ]


def test_readyz_waits_for_warm_up(data_dir: Path) -> None:
    import time

    with TestClient(create_app(make_settings(data_dir, warmup=True))) as c:
        state = c.app.state.lsr
        deadline = time.monotonic() + PATIENCE_S
        while time.monotonic() < deadline:
            status = c.get("/readyz").status_code
            if status == 200:
                break
            assert status == 503
            time.sleep(0.05)
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json()["ready"] is True and "warmup_error" not in r.json()
        state.ready = False  # what a request sees while warm-up runs
        assert c.get("/readyz").json() == {
            "ready": False,
            "collections": 0,
            "collections_unavailable": {},
            "collections_damaged": {},
        }
        assert c.get("/healthz").status_code == 200


def test_any_encoder_when_the_operator_allows_it(data_dir: Path) -> None:
    with TestClient(create_app(make_settings(data_dir, encoders="*"))) as c:
        r = c.post("/v1/collections", json={"name": "n", "encoder": "/etc"})
        assert r.status_code == 422 and "cannot run here" in r.json()["error"]["message"]
        r = c.post("/v1/collections", json={"name": "n", "encoder": "x" * 256})
        assert r.status_code == 422
