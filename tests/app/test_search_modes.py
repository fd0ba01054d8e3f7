"""Over REST: exact mode and certified answers, per-request recall targets, stage timings,
the index's internals in explain, and the collection's recall target (create, PATCH,
persisted, stats, metrics); every bad value is a 4xx that leaves the other requests alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.storage.checked import read_checked_json, write_checked_json
from tests.app.conftest import DIM, make_settings, random_docs, random_query

N_SEALED, N_MUTABLE = 600, 40


def _add(client: TestClient, name: str, docs: list[dict]) -> None:
    for i in range(0, len(docs), 200):
        r = client.post(f"/v1/collections/{name}/documents", json={"documents": docs[i : i + 200]})
        assert r.status_code == 201, r.text


@pytest.fixture
def two_segments(data_dir: Path) -> Iterator[tuple[TestClient, list[dict]]]:
    """Collection ``v``: 600 documents in a sealed, indexed, calibrated segment and 40 in the
    mutable one (searched exactly)."""
    with TestClient(create_app(make_settings(data_dir))) as client:
        r = client.post("/v1/collections", json={"name": "v", "encoder": "none", "dim": DIM})
        assert r.status_code == 201, r.text
        docs = random_docs(N_SEALED, seed=11) + random_docs(N_MUTABLE, seed=12, start=N_SEALED)
        _add(client, "v", docs[:N_SEALED])
        assert client.post("/v1/collections/v/seal").json()["sealed"] is True
        _add(client, "v", docs[N_SEALED:])
        segments = client.get("/v1/collections/v/stats").json()["segments"]
        assert [(s["kind"], s["indexed"], s["calibrated"]) for s in segments] == [
            ("sealed", True, True),
            ("mutable", False, False),
        ]
        yield client, docs


def _exact_scores(docs: list[dict], query: dict) -> dict[str, float]:
    """Every document's score for ``query``, from the float16 weights the service stores."""
    q = np.zeros(DIM)
    q[query["indices"]] = query["values"]
    out = {}
    for d in docs:
        values = np.asarray(d["vector"]["values"], np.float32).astype(np.float16)
        out[d["id"]] = float(q[d["vector"]["indices"]] @ values.astype(np.float64))
    return out


def _assert_exact_top_k(hits: list[dict], docs: list[dict], query: dict, k: int) -> None:
    """``hits`` are a true top-k: each score is the document's own, and the scores are the
    k best of the collection (ties may come in any order)."""
    truth = _exact_scores(docs, query)
    best = sorted((s for s in truth.values() if s > 0), reverse=True)[:k]
    assert [h["score"] for h in hits] == pytest.approx(best, abs=1e-3)
    for h in hits:
        assert h["score"] == pytest.approx(truth[h["id"]], abs=1e-3)


def _search(client: TestClient, body: dict, status: int = 200) -> dict:
    r = client.post("/v1/collections/v/search", json=body)
    assert r.status_code == status, r.text
    return r.json()


def test_exact_mode_is_certified_and_exact(two_segments) -> None:
    client, docs = two_segments
    for seed in range(20):
        query = random_query(seed)
        body = _search(client, {"vector": query, "k": 10, "mode": "exact"})
        assert body["certified"] is True
        _assert_exact_top_k(body["hits"], docs, query, 10)
        older = _search(client, {"vector": query, "k": 10, "exact": True})  # the older name
        assert (older["hits"], older["certified"]) == (body["hits"], True)


def test_certify_proves_approximate_answers_exact(two_segments) -> None:
    """With certify, an approximate answer is certified only when it is the exact top-k;
    asking never changes the answer; without asking, an answer that went through the index
    approximately is never claimed exact."""
    client, docs = two_segments
    certified = 0
    for seed in range(40):
        query = random_query(seed)
        knobs = {"vector": query, "k": 10, "query_cut": 2, "heap_factor": 1.0}
        plain = _search(client, knobs)
        checked = _search(client, {**knobs, "certify": True})
        assert plain["certified"] is False
        assert checked["hits"] == plain["hits"]
        if checked["certified"]:
            certified += 1
            _assert_exact_top_k(checked["hits"], docs, query, 10)
    assert certified > 0


def test_only_the_mutable_segment_is_always_certified(client: TestClient) -> None:
    client.post("/v1/collections", json={"name": "v", "encoder": "none", "dim": DIM})
    docs = random_docs(50, seed=3)
    _add(client, "v", docs)
    body = _search(client, {"vector": random_query(1), "k": 5})
    assert body["certified"] is True  # nothing was searched approximately
    _assert_exact_top_k(body["hits"], docs, random_query(1), 5)


def test_recall_per_request_uses_each_segments_calibration(two_segments) -> None:
    """A request's recall target runs, on the sealed segment, the setting its calibration
    picks for that target (exact search when none meets it); a higher target never scores
    fewer documents; recall 1 is exact search, hence certified."""
    client, docs = two_segments
    query = random_query(7)
    scored = []
    for target in (0.5, 0.8, 0.95, 1.0):
        r = client.post(
            "/v1/collections/v/explain", json={"vector": query, "k": 10, "recall": target}
        )
        assert r.status_code == 200, r.text
        sealed, mutable = r.json()["segments"]
        assert sealed["setting"]["recall_target"] == target and sealed["setting"]["calibrated"]
        assert mutable["setting"] == {"mode": "exact", "index": False} and mutable["index"] is None
        setting = sealed["setting"]
        scored.append(sealed["index"]["docs_scored"])
        body = _search(client, {"vector": query, "k": 10, "recall": target})
        if setting["mode"] == "exact":
            same = {"mode": "exact"}
            assert body["certified"] is True
        else:
            same = {"query_cut": setting["query_cut"], "heap_factor": setting["heap_factor"]}
        assert body["hits"] == _search(client, {"vector": query, "k": 10, **same})["hits"]
    assert scored == sorted(scored)
    assert sealed["setting"]["mode"] == "exact"  # no sample proves recall 1
    _assert_exact_top_k(body["hits"], docs, query, 10)


def test_without_calibration_a_recall_target_searches_exactly(data_dir: Path) -> None:
    """Segments sealed without a calibration (``--no-calibrate``) meet any recall target by
    exact search, and stats say so."""
    with TestClient(create_app(make_settings(data_dir, calibrate_segments=False))) as client:
        body = {"name": "v", "encoder": "none", "dim": DIM, "target_recall": 0.9}
        assert client.post("/v1/collections", json=body).status_code == 201
        docs = random_docs(300, seed=5)
        _add(client, "v", docs)
        client.post("/v1/collections/v/seal")
        stats = client.get("/v1/collections/v/stats").json()
        assert [(s["indexed"], s["calibrated"]) for s in stats["segments"]] == [
            (True, False),
            (False, False),
        ]
        assert stats["recall"]["setting"] == {"mode": "exact", "from": "no calibrated segment"}
        query = random_query(8)
        answer = _search(client, {"vector": query, "k": 10})
        assert answer["certified"] is True
        _assert_exact_top_k(answer["hits"], docs, query, 10)
        r = client.post("/v1/collections/v/explain", json={"vector": query, "recall": 0.5})
        sealed = r.json()["segments"][0]
        assert sealed["setting"] == {
            "mode": "exact",
            "index": True,
            "calibrated": False,
            "recall_target": 0.5,
        }
        assert _search(client, {"vector": query, "k": 10, "recall": 0.5})["certified"] is True


def test_timings_are_reported_per_stage(two_segments) -> None:
    client, _ = two_segments
    for body in (
        {"vector": random_query(2), "k": 10},
        {"vector": random_query(2), "k": 10, "mode": "exact", "filter": {"group": 1}},
    ):
        out = _search(client, body)
        timings = out["timings_ms"]
        assert set(timings) == {"encode", "index", "fetch"}
        assert all(v >= 0 for v in timings.values())
        assert sum(timings.values()) <= out["took_ms"] + 0.01  # parts of the whole
    r = client.post(
        "/v1/collections/v/search/batch",
        json={"searches": [{"vector": random_query(s)} for s in range(3)]},
    )
    batch = r.json()
    assert set(batch["timings_ms"]) == {"encode", "index", "fetch"}
    assert all(res["timings_ms"] == batch["timings_ms"] for res in batch["results"])


def test_text_query_timings_include_encoding(data_dir: Path, splade_available: str) -> None:
    with TestClient(create_app(make_settings(data_dir))) as client:
        client.post("/v1/collections", json={"name": "t", "encoder": splade_available})
        docs = [{"id": "a", "text": "the wing of a hypersonic aircraft"}]
        client.post("/v1/collections/t/documents", json={"documents": docs})
        body = client.post("/v1/collections/t/search", json={"query": "hypersonic wing"}).json()
        assert body["hits"][0]["id"] == "a" and body["timings_ms"]["encode"] > 0
        assert body["certified"] is True  # one mutable segment, scored exactly


def test_explain_reports_the_index_internals(two_segments) -> None:
    client, _ = two_segments
    query = random_query(5)
    r = client.post(
        "/v1/collections/v/explain",
        json={"vector": query, "k": 5, "query_cut": 2, "heap_factor": 0.9},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    sealed, mutable = body["segments"]
    assert (sealed["kind"], sealed["rows"], mutable["kind"], mutable["rows"]) == (
        "sealed",
        N_SEALED,
        "mutable",
        N_MUTABLE,
    )
    assert sealed["setting"] == {
        "mode": "approx",
        "query_cut": 2,
        "heap_factor": 0.9,
        "index": True,
        "calibrated": True,
    }
    inner = sealed["index"]
    assert inner["mode"] == "approx" and inner["query_cut"] == 2 and inner["k"] == 5
    walked = sorted(zip(query["values"], query["indices"], strict=True), reverse=True)[:2]
    assert inner["lists_walked"] == [c for _, c in walked]
    assert len(inner["lists_walked"]) + len(inner["lists_skipped"]) == inner["query_terms"] == 5
    assert inner["blocks_visited"] + inner["blocks_skipped"] == inner["blocks_scored"]
    assert inner["docs_scored"] > 0 and isinstance(inner["certified"], bool)
    assert inner["threshold"] == pytest.approx(inner["scores"][-1])
    assert inner["unscored_bound"] is not None
    merged = [h["id"] for h in body["hits"]]
    for doc_id, score in zip(inner["doc_ids"], inner["scores"], strict=True):
        if doc_id is not None and score > body["hits"][-1]["score"] + 1e-6:
            assert doc_id in merged  # the segment's part of the merged answer
    exact = client.post(
        "/v1/collections/v/explain", json={"vector": query, "k": 5, "mode": "exact"}
    ).json()["segments"][0]
    assert exact["setting"]["mode"] == "exact" and exact["index"]["certified"] is True


BAD = [
    ({"recall": 0}, "recall"),
    ({"recall": 1.5}, "recall"),
    ({"recall": -0.1}, "recall"),
    ({"recall": "0.9"}, "recall"),
    ({"recall": True}, "recall"),
    ({"recall": None, "mode": "fast"}, "mode"),
    ({"mode": 1}, "mode"),
    ({"certify": "yes"}, "certify"),
    ({"certify": 1}, "certify"),
    ({"exact": "true"}, "exact"),
    ({"recall": 0.9, "query_cut": 3}, "not both"),
    ({"recall": 0.9, "heap_factor": 0.8}, "not both"),
    ({"recall": 0.9, "mode": "exact"}, "exact mode always has recall 1"),
    ({"recall": 0.9, "exact": True}, "exact mode always has recall 1"),
]


@pytest.mark.parametrize(("extra", "says"), BAD)
def test_bad_values_are_4xx_and_harm_nothing(two_segments, extra: dict, says: str) -> None:
    client, _ = two_segments
    good = {"vector": random_query(4), "k": 10}
    before = _search(client, good)
    for route in ("search", "explain"):
        r = client.post(f"/v1/collections/v/{route}", json={**good, **extra})
        assert r.status_code == 422, r.text
        assert says in r.json()["error"]["message"]
    r = client.post("/v1/collections/v/search/batch", json={"searches": [good, {**good, **extra}]})
    assert r.status_code == 422, r.text
    assert _search(client, good)["hits"] == before["hits"]


def test_target_recall_is_set_changed_and_kept(data_dir: Path) -> None:
    settings = make_settings(data_dir)
    with TestClient(create_app(settings)) as client:
        for bad in (0, 1.01, "high", True):
            r = client.post(
                "/v1/collections",
                json={"name": "v", "encoder": "none", "dim": DIM, "target_recall": bad},
            )
            assert r.status_code == 422, r.text
        r = client.post(
            "/v1/collections",
            json={"name": "v", "encoder": "none", "dim": DIM, "target_recall": 0.9},
        )
        assert r.status_code == 201 and r.json()["target_recall"] == 0.9
        for bad in ({}, {"target_recall": 0}, {"target_recall": "x"}, {"other": 1}):
            assert client.patch("/v1/collections/v", json=bad).status_code == 422
        assert client.patch("/v1/collections/nope", json={"target_recall": 0.5}).status_code == 404
        r = client.patch("/v1/collections/v", json={"target_recall": 0.8})
        assert r.status_code == 200 and r.json()["target_recall"] == 0.8
        assert client.get("/v1/collections/v/stats").json()["recall"]["target"] == 0.8
    with TestClient(create_app(settings)) as client:  # reopened: the change was durable
        assert client.get("/v1/collections/v").json()["target_recall"] == 0.8
        r = client.patch("/v1/collections/v", json={"target_recall": None})
        assert r.status_code == 200 and r.json()["target_recall"] is None


def test_configs_written_before_target_recall_still_open(data_dir: Path) -> None:
    settings = make_settings(data_dir)
    with TestClient(create_app(settings)) as client:
        client.post("/v1/collections", json={"name": "old", "encoder": "none", "dim": DIM})
    path = data_dir / "collections" / "old" / "config.json"
    body = read_checked_json(path, "config.json")
    del body["target_recall"]
    write_checked_json(path, body)
    with TestClient(create_app(settings)) as client:
        r = client.get("/v1/collections/old")
        assert r.status_code == 200 and r.json()["target_recall"] is None


def test_stats_and_metrics_show_live_recall(two_segments) -> None:
    client, _ = two_segments
    assert client.patch("/v1/collections/v", json={"target_recall": 0.9}).status_code == 200
    for seed in range(5):
        _search(client, {"vector": random_query(seed), "k": 10, "mode": "exact"})
    live = client.get("/v1/collections/v/stats").json()["recall"]
    assert live["target"] == 0.9 and live["k"] == 10 and live["moves"] == 0
    assert live["setting"]["from"] == "controller" and live["setting"]["reference_segment"] == 1
    assert live["setting"]["front"] and 0 <= live["ci_low"] <= live["ci_high"] <= 1
    assert live["searches"] == 5 and live["certified"] == 5
    assert set(live["sampler"]) >= {"sample_rate", "offered", "dropped", "pending"}
    text = client.get("/metrics").text
    for line in (
        'lsr_recall_target{collection="v"} 0.9',
        'lsr_recall_samples{collection="v"}',
        'lsr_recall_ci_low{collection="v"}',
        'lsr_recall_ci_high{collection="v"}',
        'lsr_recall_estimate{collection="v"}',
        'lsr_recall_moves_total{collection="v"} 0.0',
        'lsr_searches_total{collection="v"} 5.0',
        'lsr_certified_total{collection="v"} 5.0',
        "lsr_recall_samples_dropped_total 0.0",
    ):
        assert line in text, line
