"""kill -9 during bulk writes to a splade-tiny + BM25 collection, against a real ``lsr
serve``: every acknowledged write survives in every field, a write in flight is applied whole
(every document of its batch, in every field, with its new BM25 terms) or not at all, and the
BM25 statistics after restart are those of the documents present."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

from encoders.bm25 import BM25Settings, analyse
from tests.app.conftest import ServerProcess, kill9_during_writes

WORDS = ["wing", "flow", "shock", "heat", "plate", "boundary", "layer", "mach", "jet", "nozzle",
         "vortex", "drag", "lift", "panel", "buckling", "shell", "wake", "cone"]  # fmt: skip
BODY = {
    "name": "h",
    "fields": {"splade": {"encoder": "splade-tiny"}, "bm25": {"encoder": "bm25"}},
}


def _batch(seed: int, start: int, n: int = 10) -> list[dict]:
    """Documents with a few common words and one word of their own (``zq<n>x``)."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(start, start + n):
        words = rng.choice(WORDS, int(rng.integers(2, 8))).tolist()
        docs.append({"id": f"d{i}", "text": " ".join([*words, f"zq{i}x"])})
    return docs


def test_kill_9_during_writes_leaves_every_write_whole_in_every_field(
    tmp_path: Path, splade_available: str
) -> None:
    env = {"LSR_SEAL_ROWS": "150", "LSR_FLAT_SEGMENT_ROWS": "50", "LSR_MAX_SEGMENTS": "2"}
    srv = ServerProcess(tmp_path / "data", env).start()
    acked: dict[str, dict] = {}
    deleted: set[str] = set()
    maybe_deleted: set[str] = set()
    sent: list[list[dict]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w: int) -> None:
        with httpx.Client(base_url=srv.url, timeout=300) as c:
            for b in range(10_000):
                if stop.is_set():
                    return
                docs = _batch(w * 100_000 + b, (w * 100_000 + b) * 10)
                with lock:
                    sent.append(docs)
                try:
                    r = c.put("/v1/collections/h/documents", json={"documents": docs})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    with lock:
                        acked.update({d["id"]: d for d in docs})

    def deleter() -> None:
        with httpx.Client(base_url=srv.url, timeout=300) as c:
            while not stop.is_set():
                with lock:
                    victims = [i for i in list(acked)[::5] if i not in deleted][:3]
                    maybe_deleted.update(victims)
                if not victims:
                    stop.wait(0.02)  # pacing, not synchronisation: nothing to delete yet
                    continue
                try:
                    r = c.request("DELETE", "/v1/collections/h/documents", json={"ids": victims})
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    with lock:
                        deleted.update(r.json()["ids"])
                        maybe_deleted.difference_update(victims)

    try:
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            r = c.post("/v1/collections", json=BODY)
            assert r.status_code == 201, r.text
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        threads.append(threading.Thread(target=deleter))
        kill9_during_writes(srv, "h", threads, stop, acked, min_acked=300)
    finally:
        srv.stop()

    srv2 = ServerProcess(tmp_path / "data", env).start(timeout=300)
    try:
        with httpx.Client(base_url=srv2.url, timeout=60) as c:
            present: dict[str, str] = {}
            for docs in sent:
                found = {d["id"]: c.get(f"/v1/collections/h/documents/{d['id']}") for d in docs}
                here = {i for i, r in found.items() if r.status_code == 200}
                gone = {i for i, r in found.items() if r.status_code == 404}
                assert here | gone == set(found), "a GET answered neither 200 nor 404"
                assert not here or gone <= deleted | maybe_deleted, sorted(gone)  # whole
                for doc in docs:
                    if doc["id"] in here:
                        fields = found[doc["id"]].json()["fields"]
                        assert fields["splade"]["indices"], doc["id"]  # in every field
                        assert fields["bm25"]["indices"], doc["id"]
                        present[doc["id"]] = doc["text"]
            for doc_id in acked:
                if doc_id in deleted:
                    assert doc_id not in present, f"acknowledged delete of {doc_id} lost"
                elif doc_id not in maybe_deleted:
                    assert doc_id in present, f"acknowledged write of {doc_id} lost"
            assert c.get("/v1/collections/h").json()["documents"] == len(present)
            # Each present document's own word is in the BM25 vocabulary (logged with its
            # write) and finds it, in the BM25 field and fused (BM25 weighs 0.7 of 1).
            fusion = {"method": "linear", "weights": {"splade": 0.3, "bm25": 0.7}}
            for doc_id in present:
                word = f"zq{doc_id[1:]}x"
                for extra in ({"fields": ["bm25"]}, {"fusion": fusion}):
                    body = {"query": word, "k": 1, **extra}
                    hits = c.post("/v1/collections/h/search", json=body).json()["hits"]
                    assert [h["id"] for h in hits] == [doc_id], (word, extra)
            stats = c.get("/v1/collections/h/stats").json()
            lengths = [len(t) for t in analyse(list(present.values()), BM25Settings())]
            assert stats["bm25"]["bm25"]["documents"] == len(present)
            assert stats["bm25"]["bm25"]["avgdl"] == pytest.approx(np.mean(lengths), abs=1e-3)
            assert any(s["kind"] == "sealed" for s in stats["segments"])
    finally:
        srv2.stop()
