"""Issue 11, items 1-3 and 9: text, metadata and vectors a client can send that used to
answer 500 (or break the collection), and the empty document that used to be refused."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import random_docs

# JSON bodies written by hand: a lone UTF-16 surrogate (\ud800) cannot be encoded by a client
# library, but any client can send its JSON escape.
SURROGATE = "\\ud800"
JSON = {"content-type": "application/json"}


def post_raw(client: TestClient, url: str, body: str, method: str = "POST"):
    return client.request(method, url, content=body.encode(), headers=JSON)


def test_a_lone_surrogate_in_a_query_is_a_422(client: TestClient, splade_available: str) -> None:
    client.post("/v1/collections", json={"name": "t", "encoder": splade_available})
    for url in ("/v1/collections/t/search", "/v1/collections/t/explain"):
        r = post_raw(client, url, f'{{"query": "{SURROGATE} wing"}}')
        assert r.status_code == 422, r.text
        assert "surrogate" in r.json()["error"]["message"]
    r = post_raw(
        client,
        "/v1/collections/t/search/batch",
        f'{{"searches": [{{"query": "wing"}}, {{"query": "{SURROGATE}"}}]}}',
    )
    assert r.status_code == 422 and "searches.1.query" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("document", "where"),
    [
        (f'{{"id": "a", "text": "{SURROGATE} wing"}}', "documents.0.text"),
        (f'{{"id": "{SURROGATE}", "vector": {{"1": 1.0}}}}', "documents.0.id"),
        (
            f'{{"id": "a", "vector": {{"1": 1.0}}, "metadata": {{"k": "{SURROGATE}"}}}}',
            "documents.0.metadata",
        ),
        (
            f'{{"id": "a", "vector": {{"1": 1.0}}, "metadata": {{"{SURROGATE}": 1}}}}',
            "documents.0.metadata",
        ),
        (
            f'{{"id": "a", "vector": {{"1": 1.0}}, "metadata": {{"k": [["{SURROGATE}"]]}}}}',
            "documents.0.metadata",
        ),
    ],
)
def test_surrogates_in_documents_are_refused_before_anything_is_stored(
    client: TestClient, vec_collection: str, document: str, where: str
) -> None:
    r = post_raw(
        client, f"/v1/collections/{vec_collection}/documents", f'{{"documents": [{document}]}}'
    )
    assert r.status_code == 422, r.text
    assert where in r.json()["error"]["message"] and "surrogate" in r.json()["error"]["message"]
    assert client.get(f"/v1/collections/{vec_collection}").json()["documents"] == 0
    r = client.post(f"/v1/collections/{vec_collection}/search", json={"vector": {"1": 1.0}, "k": 5})
    assert r.status_code == 200 and r.json()["hits"] == []


def test_a_surrogate_in_a_filter_or_delete_is_a_422(
    client: TestClient, vec_collection: str
) -> None:
    url = f"/v1/collections/{vec_collection}"
    r = post_raw(
        client, f"{url}/search", f'{{"vector": {{"1": 1}}, "filter": {{"k": "{SURROGATE}"}}}}'
    )
    assert r.status_code == 422, r.text
    r = post_raw(client, f"{url}/documents", f'{{"ids": ["{SURROGATE}"]}}', method="DELETE")
    assert r.status_code == 422, r.text


@pytest.mark.parametrize(
    ("vector", "message"),
    [
        ({"indices": [2**63], "values": [1.0]}, "indices.0"),
        ({"indices": [2**64 + 5], "values": [1.0]}, "indices.0"),
        ({"indices": [-(2**63) - 1], "values": [1.0]}, "indices.0"),
        ({"\u00b2": 1.0}, "not a column number"),  # "²".isdigit() is True; int("²") fails
        ({"99999999999999999999999": 1.0}, "outside"),
        ({"\u0663": 1.0}, "not a column number"),  # an Arabic-Indic three
    ],
)
def test_vectors_with_huge_indices_or_odd_keys_are_422(
    client: TestClient, vec_collection: str, vector: dict, message: str
) -> None:
    url = f"/v1/collections/{vec_collection}"
    for r in (
        client.post(f"{url}/search", json={"vector": vector}),
        client.post(f"{url}/documents", json={"documents": [{"id": "x", "vector": vector}]}),
    ):
        assert r.status_code == 422, r.text
        assert message in r.json()["error"]["message"]


def test_empty_documents_are_stored_and_match_nothing(
    client: TestClient, splade_available: str
) -> None:
    """Cranfield document 471 is empty: a batch of 100 holding it must be stored whole."""
    client.post("/v1/collections", json={"name": "t", "encoder": splade_available})
    docs = [{"id": f"d{i}", "text": f"wing number {i} in a wind tunnel"} for i in range(99)]
    docs.insert(50, {"id": "471", "text": ""})
    docs.append({"id": "blank", "text": "   ", "metadata": {"kind": "blank"}})
    r = client.post("/v1/collections/t/documents", json={"documents": docs})
    assert r.status_code == 201, r.text
    assert client.get("/v1/collections/t").json()["documents"] == 101
    got = client.get("/v1/collections/t/documents/471").json()
    assert got["vector"] == {"indices": [], "values": []}
    hits = client.post("/v1/collections/t/search", json={"query": "wing", "k": 200}).json()["hits"]
    assert len(hits) == 99 and {"471", "blank"}.isdisjoint(h["id"] for h in hits)
    r = client.post("/v1/collections/t/search", json={"query": ""})
    assert r.status_code == 422  # an empty query is still a mistake


def test_vector_documents_may_be_empty_too(client: TestClient, vec_collection: str) -> None:
    docs = random_docs(3, seed=4)
    docs.append({"id": "nothing", "vector": {"indices": [], "values": []}})
    r = client.post(f"/v1/collections/{vec_collection}/documents", json={"documents": docs})
    assert r.status_code == 201, r.text
    got = client.get(f"/v1/collections/{vec_collection}/documents/nothing").json()
    assert got["vector"] == {"indices": [], "values": []}
