"""Property-based requests generated from the OpenAPI schema (schemathesis) against a real
server: whatever the input, the answer is never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, settings

from tests.app.conftest import DIM, ServerProcess, random_docs

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed (test extra)")
from schemathesis.checks import not_a_server_error  # noqa: E402


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("fuzz") / "data").start()
    with httpx.Client(base_url=srv.url, timeout=120) as c:
        c.post("/v1/collections", json={"name": "fuzz", "encoder": "none", "dim": DIM})
        c.post("/v1/collections/fuzz/documents", json={"documents": random_docs(100, seed=1)})
        # The schema's default encoder is splade-tiny, so the fuzzer creates collections with
        # it; its first load (the server runs without warm-up) can outlast schemathesis's 10 s
        # read timeout on a busy 2-core box. Load it once here: the server keeps it.
        warm = c.post("/v1/collections", json={"name": "warm", "encoder": "splade-tiny"})
        assert warm.status_code == 201, warm.text
        c.delete("/v1/collections/warm")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def api_schema(fuzz_server: ServerProcess):  # noqa: ANN201 - a schemathesis schema
    return schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_no_server_errors(case, fuzz_server: ServerProcess) -> None:  # noqa: ANN001
    if (
        case.path_parameters
        and "name" in case.path_parameters
        and case.method == "DELETE"
        and case.path == "/v1/collections/{name}"
    ):
        case.path_parameters["name"] = "not-the-fuzz-collection"
    case.call_and_validate(base_url=fuzz_server.url, checks=[not_a_server_error])
