"""REST indexing jobs from files of precomputed vectors (vector collections and text ones)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from tests.app.conftest import wait_for_job
from tests.jobs.test_vector_corpus import random_csr, write_bigann_csr


def finish(client: TestClient, name: str, source: Path) -> dict:
    """Start a job on ``source`` and wait for it to end; its final state."""
    r = client.post(f"/v1/collections/{name}/jobs", json={"source": str(source), "batch_size": 7})
    assert r.status_code == 202, r.text
    return wait_for_job(client, r.json()["id"])


def test_vector_collection_loads_a_json_vector_file(
    client: TestClient, vec_collection: str, import_dir: Path
) -> None:
    source = import_dir / "vectors.jsonl"
    # weights that float16 holds exactly: the service stores float16 steps
    records = [
        {"id": f"v{i}", "contents": "text is ignored", "vector": {str(i): 1.5, str(i + 100): 0.25}}
        for i in range(20)
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    job = finish(client, vec_collection, source)
    assert job["state"] == "done" and job["done"] == 20, job
    doc = client.get(f"/v1/collections/{vec_collection}/documents/v3").json()
    assert doc["vector"] == {"indices": [3, 103], "values": [1.5, 0.25]}
    hits = client.post(
        f"/v1/collections/{vec_collection}/search",
        json={"vector": {"indices": [103], "values": [1.0]}},
    ).json()["hits"]
    assert [h["id"] for h in hits] == ["v3"]


def test_vector_collection_loads_a_bigann_csr_file(
    client: TestClient, vec_collection: str, import_dir: Path
) -> None:
    matrix = random_csr(30, 200, seed=11)
    matrix.data[:] = np.round(matrix.data * 4) / 4 + 0.25  # float16-exact weights
    job = finish(client, vec_collection, write_bigann_csr(import_dir / "base.csr", matrix))
    assert job["state"] == "done" and job["done"] == 30, job
    lo, hi = matrix.indptr[17], matrix.indptr[18]
    doc = client.get(f"/v1/collections/{vec_collection}/documents/17").json()
    assert doc["vector"]["indices"] == matrix.indices[lo:hi].tolist()
    assert doc["vector"]["values"] == matrix.data[lo:hi].tolist()


def test_a_text_file_into_a_vector_collection_is_refused(
    client: TestClient, vec_collection: str, import_dir: Path
) -> None:
    source = import_dir / "texts.jsonl"
    source.write_text(json.dumps({"_id": "a", "text": "words"}) + "\n")
    r = client.post(f"/v1/collections/{vec_collection}/jobs", json={"source": str(source)})
    assert r.status_code == 422 and "file of vectors" in r.json()["error"]["message"]


def test_a_bad_vector_fails_the_job_naming_the_document(
    client: TestClient, vec_collection: str, import_dir: Path
) -> None:
    source = import_dir / "bad.jsonl"
    source.write_text(
        '{"id": "ok", "vector": {"1": 1.0}}\n{"id": "far", "vector": {"999999": 1.0}}\n'
    )
    job = finish(client, vec_collection, source)
    assert job["state"] == "failed" and "'far'" in job["error"] and "outside" in job["error"]
    assert client.get(f"/v1/collections/{vec_collection}/documents/ok").status_code == 404


def test_text_collection_takes_vectors_through_its_encoder_vocabulary(
    client: TestClient, splade_available: str, import_dir: Path
) -> None:
    client.post("/v1/collections", json={"name": "txt", "encoder": splade_available})
    source = import_dir / "jvc.jsonl"
    line = {"id": "s", "contents": "the stadium", "vector": {"weather": 2.0, "rocket": 0.5}}
    source.write_text(json.dumps(line) + "\n")
    job = finish(client, "txt", source)
    assert job["state"] == "done", job
    r = client.post("/v1/collections/txt/explain", json={"vector": {"weather": 1.0}, "k": 1})
    terms = {t["token"]: t["doc_weight"] for t in r.json()["hits"][0]["terms"]}
    assert terms == {"weather": 2.0}  # the given vector, not an encoding of "the stadium"
