"""kill -9 during bulk writes to a splade-tiny + BM25 collection, against a real ``lsr
serve``: every acknowledged write survives in every field, a write in flight is applied whole
(every document of its batch, in every field, with its new BM25 terms) or not at all, and the
BM25 statistics after restart are those of the documents present."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from encoders.bm25 import BM25Settings, analyse
from tests.app.conftest import CrashLoad, ServerProcess

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
    load = CrashLoad("h", _batch, batch_size=10, delete_every=5, delete_count=3)
    try:
        with httpx.Client(base_url=srv.url, timeout=120) as c:
            r = c.post("/v1/collections", json=BODY)
            assert r.status_code == 201, r.text
        load.run_and_kill(srv, writers=3, min_acked=300)
    finally:
        srv.stop()

    srv2 = ServerProcess(tmp_path / "data", env).start()
    try:
        with httpx.Client(base_url=srv2.url, timeout=60) as c:
            answers = load.check_restarted(c)
            sent = {d["id"]: d["text"] for docs in load.sent for d in docs}
            present: dict[str, str] = {}
            for doc_id, answer in answers.items():
                fields = answer.json()["fields"]
                assert fields["splade"]["indices"], doc_id  # in every field
                assert fields["bm25"]["indices"], doc_id
                present[doc_id] = sent[doc_id]
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
