"""Overload answers 503 at once instead of queueing without bound."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.errors import OverloadedError
from app.main import create_app
from app.services.pool import WorkerPool
from tests.app.conftest import DIM, make_settings, random_docs, random_query


def test_pool_refuses_beyond_max_pending() -> None:
    pool = WorkerPool("t", threads=1, max_pending=2)
    release = threading.Event()

    async def scenario() -> list[object]:
        blocked = [asyncio.ensure_future(pool.run(release.wait, 10)) for _ in range(2)]
        await asyncio.sleep(0.05)
        with pytest.raises(OverloadedError):
            await pool.run(lambda: None)
        release.set()
        return await asyncio.gather(*blocked)

    assert asyncio.run(scenario()) == [True, True]
    assert pool.pending == 0
    pool.shutdown()


def test_full_search_pool_answers_503(data_dir: Path) -> None:
    settings = make_settings(data_dir, threads=1, max_pending=1)
    with TestClient(create_app(settings)) as c:
        c.post("/v1/collections", json={"name": "v", "encoder": "none", "dim": DIM})
        c.post("/v1/collections/v/documents", json={"documents": random_docs(1000, seed=1)})
        heavy = {
            "searches": [{"vector": random_query(s), "k": 100, "exact": True} for s in range(300)]
        }
        answers: list[tuple[int, dict]] = []

        def client_thread() -> None:
            r = c.post("/v1/collections/v/search/batch", json=heavy)
            answers.append((r.status_code, r.json()))  # one append: atomic across threads

        threads = [threading.Thread(target=client_thread) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        statuses = {s for s, _ in answers}
        assert statuses <= {200, 503} and 200 in statuses and 503 in statuses
        refused = [b for s, b in answers if s == 503]
        assert all(b["error"]["code"] == "overloaded" for b in refused)
