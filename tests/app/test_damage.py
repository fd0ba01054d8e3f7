"""Issue 11.6-7: damage in one collection's files quarantines that collection (503 naming the
damage, files untouched) while the server starts and every other collection serves."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.storage.checked import read_checked_json, write_array, write_checked_json
from tests.app.conftest import DIM, make_settings, random_docs, random_query, wait_ready


def populate(data_dir: Path) -> dict[str, list[dict]]:
    """Collections "good" and "bad": a sealed, indexed segment (120 documents) and 30 more
    documents in the write-ahead log, written by 30 requests."""
    docs = {}
    with TestClient(create_app(make_settings(data_dir))) as client:
        for name in ("good", "bad"):
            client.post("/v1/collections", json={"name": name, "encoder": "none", "dim": DIM})
            sealed = random_docs(120, seed=1)
            client.post(f"/v1/collections/{name}/documents", json={"documents": sealed})
            assert client.post(f"/v1/collections/{name}/seal").json()["sealed"]
            client.request(
                "DELETE", f"/v1/collections/{name}/documents", json={"ids": ["doc-3"]}
            )  # a tombstone in the sealed segment
            logged = random_docs(30, seed=2, start=1000)
            for doc in logged:
                client.post(f"/v1/collections/{name}/documents", json={"documents": [doc]})
            docs[name] = sealed + logged
    return docs


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def segment(data_dir: Path) -> Path:
    return next((data_dir / "collections" / "bad" / "segments").glob("seg-*"))


def wal_file(data_dir: Path) -> Path:
    return max((data_dir / "collections" / "bad" / "wal").glob("wal-*.log"))


def flip(path: Path, at: float = 0.5, count: int = 8) -> None:
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    for i in range(start, min(start + count, len(data))):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def truncate(path: Path, fraction: float = 0.5) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(int(os.path.getsize(path) * fraction))


def huge_column_consistently(data_dir: Path) -> None:
    """A huge column id with every checksum made to match: the structure check must catch it
    (it used to crash the process in the exact-search kernel)."""
    seg = segment(data_dir)
    manifest = read_checked_json(seg / "manifest.json", "m")
    from app.storage.checked import read_array

    indices = read_array(seg / "indices.arrow", "i").to_numpy().copy()
    indices[5] = 2**31 - 1
    os.remove(seg / "indices.arrow")
    manifest["files"]["indices"] = write_array(seg / "indices.arrow", indices.astype(np.int32))
    write_checked_json(seg / "manifest.json", manifest)


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "values flipped": (lambda d: flip(segment(d) / "values.arrow"), "values.arrow fails"),
    "indices huge": (huge_column_consistently, "column ids outside"),
    "doc ids damaged": (lambda d: flip(segment(d) / "doc_ids.arrow", 0.9), "doc_ids.arrow"),
    "indptr truncated": (lambda d: truncate(segment(d) / "indptr.arrow"), "indptr.arrow has"),
    "segment manifest": (lambda d: flip(segment(d) / "manifest.json", 0.3, 2), "manifest.json"),
    "segment missing": (lambda d: os.rename(segment(d), d / "elsewhere"), "is missing"),
    "metadata truncated": (lambda d: truncate(segment(d) / "metadata.arrow"), "metadata.arrow"),
    "tombstones flipped": (lambda d: flip(segment(d) / "deleted.bin", 0.1, 1), "deleted.bin"),
    "collection manifest": (
        lambda d: (d / "collections/bad/manifest.json").write_text('{"segments": [9]}'),
        "manifest.json has no checksum",
    ),
    "config damaged": (lambda d: flip(d / "collections/bad/config.json", 0.4, 1), "config.json"),
    "wal flipped": (lambda d: flip(wal_file(d), 1 / 3), "fails its checksum"),
    "wal truncated": (lambda d: truncate(wal_file(d)), "acknowledged"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damage_quarantines_one_collection_and_the_rest_serve(data_dir: Path, kind: str) -> None:
    docs = populate(data_dir)
    damage, message = DAMAGE[kind]
    damage(data_dir)
    bad_folder = data_dir / "collections" / "bad"
    before = snapshot(bad_folder)
    with TestClient(create_app(make_settings(data_dir, warmup=True))) as client:
        ready = wait_ready(client)
        assert ready["ready"] and message in ready["collections_damaged"]["bad"], ready
        listed = client.get("/v1/collections").json()
        assert [c["name"] for c in listed["collections"]] == ["good"]
        assert listed["damaged"][0]["name"] == "bad" and message in listed["damaged"][0]["damage"]
        for method, url, body in (
            ("POST", "/v1/collections/bad/search", {"vector": random_query(1)}),
            ("GET", "/v1/collections/bad/documents/doc-1", None),
            ("PUT", "/v1/collections/bad/documents", {"documents": random_docs(1, seed=9)}),
            ("GET", "/v1/collections/bad", None),
        ):
            r = client.request(method, url, json=body)
            assert r.status_code == 503, (url, r.text)
            error = r.json()["error"]
            assert error["code"] == "collection_damaged" and message in error["message"]
            assert "lsr repair" in error["message"]
        logged = docs["good"][140]
        got = client.get(f"/v1/collections/good/documents/{logged['id']}").json()
        assert got["vector"]["indices"] == logged["vector"]["indices"]
        r = client.post("/v1/collections/good/search", json={"vector": random_query(2), "k": 5})
        assert r.status_code == 200 and len(r.json()["hits"]) == 5
        assert client.get("/v1/collections/good").json()["documents"] == 149
    assert snapshot(bad_folder) == before  # nothing was cut, rewritten or cleaned up


def test_a_torn_last_record_is_kept_and_new_writes_go_to_a_new_log(data_dir: Path) -> None:
    """What kill -9 in the middle of an append leaves: opened, never cut, nothing lost."""
    docs = populate(data_dir)
    log = wal_file(data_dir)
    with open(log, "ab") as handle:
        handle.write(b"\x40\x00\x00\x00\x12\x34\x56\x78" + b'\x10\x00\x00\x00{"op":"add",')
    torn = log.read_bytes()
    for i in range(2):  # opened twice: the torn log stays as it is
        with TestClient(create_app(make_settings(data_dir))) as client:
            assert client.get("/v1/collections/bad").json()["documents"] == 149 + i
            new = random_docs(1, seed=5, start=5000 + i)
            assert (
                client.put("/v1/collections/bad/documents", json={"documents": new}).status_code
                == 200
            )
        assert log.read_bytes() == torn
    with TestClient(create_app(make_settings(data_dir))) as client:
        assert client.get("/v1/collections/bad").json()["documents"] == 151
        got = client.get(f"/v1/collections/bad/documents/{docs['bad'][-1]['id']}")
        assert got.status_code == 200
