"""Issue 11.10: API docs that work offline, and a request body that never ends is cut off."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from tests.app.conftest import ServerProcess


def test_docs_are_served_by_the_service_itself(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', page.text)
    assert assets and not [a for a in assets if "://" in a or a.startswith("//")], assets
    for asset in assets:
        r = client.get(asset)
        assert r.status_code == 200 and len(r.content) > 100, asset
    assert client.get("/openapi.json").json()["info"]["title"] == "lsr-engine"


def test_a_body_that_never_finishes_is_answered_408(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", {"LSR_BODY_TIMEOUT_S": "1"}).start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as conn:
            conn.sendall(
                b"POST /v1/collections HTTP/1.1\r\nHost: x\r\n"
                b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"na'
            )
            start = time.monotonic()
            answer = conn.recv(4096)
            waited = time.monotonic() - start
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert 0.5 < waited < 20
        assert httpx.get(srv.url + "/healthz").status_code == 200  # the server goes on
    finally:
        srv.stop()


def test_first_start_is_ready_without_waiting_for_index_build_kernels(tmp_path: Path) -> None:
    """A fresh install (empty Numba cache) is ready as soon as its encoders are loaded: the
    kernels that build an index compile afterwards, in a child process, logged."""
    env = {"LSR_WARMUP": "true", "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    srv = ServerProcess(tmp_path / "data", env)
    start = time.monotonic()
    srv.start()
    ready_after = time.monotonic() - start
    try:
        log = srv.log.read_text()
        assert "warm-up done in" in log and "ready" in log
        assert ready_after < 30, ready_after  # the build kernels alone take over a minute here
    finally:
        srv.stop()
