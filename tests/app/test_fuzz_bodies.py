"""Hypothesis: arbitrary JSON (and near-valid bodies) sent to an existing collection's routes
never gets a 5xx, and a refused write leaves the collection unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.main import create_app
from tests.app.conftest import DIM, make_settings, random_docs

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
INDICES = st.lists(st.integers(-5, DIM + 5), max_size=8)
VALUES = st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=8)
VECTOR = (
    st.fixed_dictionaries({"indices": INDICES, "values": VALUES})
    | st.dictionaries(st.text(max_size=4), st.floats(allow_nan=True), max_size=4)
    | JSON
)
METADATA = st.dictionaries(st.text(max_size=5), JSON, max_size=3) | JSON
SEARCH = st.fixed_dictionaries(
    {},
    optional={
        "vector": VECTOR,
        "query": JSON,
        "k": st.integers(-3, 2000) | JSON,
        "filter": METADATA,
        "query_cut": JSON,
        "heap_factor": JSON,
        "exact": st.booleans(),
    },
)
DOC = st.fixed_dictionaries(
    {"id": st.text(max_size=8) | JSON},
    optional={"vector": VECTOR, "text": JSON, "metadata": METADATA},
)


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data: Path = tmp_path_factory.mktemp("fuzz-bodies")
    with TestClient(create_app(make_settings(data))) as c:
        c.post("/v1/collections", json={"name": "f", "encoder": "none", "dim": DIM})
        c.post("/v1/collections/f/documents", json={"documents": random_docs(60, seed=4)})
        yield c


FAST = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


def _post(c: TestClient, path: str, body: object, method: str = "POST") -> int:
    import json

    raw = json.dumps(body, allow_nan=True).encode()
    return c.request(
        method, path, content=raw, headers={"content-type": "application/json"}
    ).status_code


@FAST
@given(body=SEARCH | JSON)
def test_search_bodies(fuzz_client: TestClient, body: object) -> None:
    assert _post(fuzz_client, "/v1/collections/f/search", body) < 500
    assert _post(fuzz_client, "/v1/collections/f/explain", body) < 500


@FAST
@given(docs=st.lists(DOC, max_size=4) | JSON)
def test_write_bodies(fuzz_client: TestClient, docs: object) -> None:
    before = fuzz_client.get("/v1/collections/f").json()["documents"]
    status = _post(fuzz_client, "/v1/collections/f/documents", {"documents": docs}, "PUT")
    assert status < 500
    after = fuzz_client.get("/v1/collections/f").json()["documents"]
    if status >= 400:
        assert after == before


@FAST
@given(body=st.fixed_dictionaries({"ids": st.lists(st.text(max_size=6) | JSON, max_size=4)}) | JSON)
def test_delete_and_batch_bodies(fuzz_client: TestClient, body: object) -> None:
    assert _post(fuzz_client, "/v1/collections/f/documents", body, "DELETE") < 500
    assert _post(fuzz_client, "/v1/collections/f/search/batch", {"searches": [body]}) < 500
    assert _post(fuzz_client, "/v1/collections", body) < 500
