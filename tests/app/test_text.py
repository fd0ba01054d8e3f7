"""Text collections with the offline splade-tiny encoder: add, search, explain, jobs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import wait_for_job

TEXTS = {
    "w": "The weather is lovely today.",
    "s": "It's so sunny outside!",
    "d": "He drove to the stadium.",
}


@pytest.fixture
def text_collection(client: TestClient, splade_available: str) -> str:
    r = client.post("/v1/collections", json={"name": "txt", "encoder": splade_available})
    assert r.status_code == 201, r.text
    assert r.json()["dim"] == 30522
    return "txt"


def test_text_round_trip_and_explain(client: TestClient, text_collection: str) -> None:
    docs = [{"id": k, "text": v, "metadata": {"k": k}} for k, v in TEXTS.items()]
    r = client.post(f"/v1/collections/{text_collection}/documents", json={"documents": docs})
    assert r.status_code == 201, r.text
    hits = client.post(
        f"/v1/collections/{text_collection}/search", json={"query": "how is the weather", "k": 3}
    ).json()["hits"]
    assert hits[0]["id"] == "w" and hits[0]["metadata"] == {"k": "w"}
    r = client.post(
        f"/v1/collections/{text_collection}/explain", json={"query": "lovely weather", "k": 1}
    )
    body = r.json()
    tokens = [t["token"] for t in body["hits"][0]["terms"]]
    assert "weather" in tokens and "lovely" in tokens
    assert (
        abs(sum(t["contribution"] for t in body["hits"][0]["terms"]) - body["hits"][0]["score"])
        < 1e-2
    )
    # a vector given as {token: weight} over the encoder's vocabulary
    r = client.post(f"/v1/collections/{text_collection}/search", json={"vector": {"stadium": 1.0}})
    assert r.json()["hits"][0]["id"] == "d"
    r = client.post(
        f"/v1/collections/{text_collection}/search", json={"vector": {"notatoken##x": 1.0}}
    )
    assert r.status_code == 422
    # batch: texts encoded together give the same hits as one by one
    batch = client.post(
        f"/v1/collections/{text_collection}/search/batch",
        json={"searches": [{"query": "sunny"}, {"query": "drove"}]},
    ).json()
    assert [r["hits"][0]["id"] for r in batch["results"]] == ["s", "d"]


@pytest.mark.parametrize(
    "body",
    [{"query": ""}, {"query": "   "}, {"query": "x" * 30_000}, {"query": 5}, {"query": None}],
)
def test_bad_text_queries(client: TestClient, text_collection: str, body: dict) -> None:
    r = client.post(f"/v1/collections/{text_collection}/search", json=body)
    assert r.status_code == 422, r.text


def test_indexing_job_from_a_jsonl_file(
    client: TestClient, text_collection: str, import_dir: Path
) -> None:
    corpus = import_dir / "corpus.jsonl"
    lines = [
        json.dumps({"_id": f"j{i}", "title": "t", "text": f"document number {i} about rockets"})
        for i in range(40)
    ]
    corpus.write_text("\n".join(lines) + "\n")
    r = client.post(
        f"/v1/collections/{text_collection}/jobs", json={"source": str(corpus), "batch_size": 16}
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    job = wait_for_job(client, job_id)
    assert job["state"] == "done" and job["done"] == 40 and job["total"] == 40
    assert client.get(f"/v1/collections/{text_collection}").json()["documents"] == 40
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 409  # already finished
    assert job_id in [j["id"] for j in client.get("/v1/jobs").json()["jobs"]]


@pytest.mark.parametrize(
    "source", ["/no/such/file.jsonl", "/etc/hostname", "/tmp/a\x00b", "~nouser/x"]
)
def test_bad_job_sources(client: TestClient, text_collection: str, source: str) -> None:
    r = client.post(f"/v1/collections/{text_collection}/jobs", json={"source": source})
    assert r.status_code == 422, r.text


@pytest.mark.slow
def test_cranfield_job_and_cancel(data_dir: Path, shared_data: Path, splade_available: str) -> None:
    from app.main import create_app
    from tests.app.conftest import make_settings

    settings = make_settings(data_dir, import_roots=str(shared_data))
    with TestClient(create_app(settings)) as client:
        client.post("/v1/collections", json={"name": "txt", "encoder": splade_available})
        cranfield_job_and_cancel(client, "txt", shared_data / "cranfield")


def cranfield_job_and_cancel(client: TestClient, text_collection: str, source: Path) -> None:
    r = client.post(
        f"/v1/collections/{text_collection}/jobs",
        json={"source": str(source), "batch_size": 32, "limit": 200},
    )
    job = wait_for_job(client, r.json()["id"])
    assert job["state"] == "done" and job["done"] == 200 and job["total"] == 200
    hits = client.post(
        f"/v1/collections/{text_collection}/search",
        json={"query": "boundary layer in supersonic flow", "k": 5},
    ).json()["hits"]
    assert len(hits) == 5
    # a second job over the whole corpus, cancelled while it runs: whole batches only
    job_id = client.post(
        f"/v1/collections/{text_collection}/jobs", json={"source": str(source), "batch_size": 8}
    ).json()["id"]
    time.sleep(0.5)
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 200
    job = wait_for_job(client, job_id)
    assert job["state"] == "cancelled" and job["done"] < 1400 and job["done"] % 8 == 0


def test_job_sources_are_confined_to_import_roots(tmp_path: Path, splade_available: str) -> None:
    from app.main import create_app
    from tests.app.conftest import make_settings

    allowed = tmp_path / "allowed"
    allowed.mkdir()
    inside = allowed / "c.jsonl"
    outside = tmp_path / "c.jsonl"
    for path in (inside, outside):
        path.write_text(json.dumps({"_id": "a", "text": "rockets and jets"}) + "\n")
    settings = make_settings(tmp_path / "data", import_roots=str(allowed))
    with TestClient(create_app(settings)) as c:
        c.post("/v1/collections", json={"name": "t", "encoder": splade_available})
        r = c.post("/v1/collections/t/jobs", json={"source": str(outside)})
        assert r.status_code == 422 and "under the import root" in r.json()["error"]["message"]
        link = allowed / "escape.jsonl"
        link.symlink_to(outside)  # a link out of the allowed folder is resolved and refused
        assert c.post("/v1/collections/t/jobs", json={"source": str(link)}).status_code == 422
        assert (
            c.post(
                "/v1/collections/t/jobs", json={"source": str(allowed / ".." / "c.jsonl")}
            ).status_code
            == 422
        )
        assert c.post("/v1/collections/t/jobs", json={"source": str(inside)}).status_code == 202
