"""Fixtures for the service tests: an in-process app, a real ``lsr serve`` process, data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sized
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

DIM = 200


def random_docs(n: int, seed: int, start: int = 0, dim: int = DIM) -> list[dict]:
    """``n`` vector documents with 1-12 non-zeros and a little metadata, reproducibly."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(start, start + n):
        nnz = int(rng.integers(1, 13))
        cols = np.sort(rng.choice(dim, nnz, replace=False))
        vals = np.round(rng.uniform(0.1, 3.0, nnz), 3)
        docs.append(
            {
                "id": f"doc-{i}",
                "vector": {"indices": cols.tolist(), "values": vals.tolist()},
                "metadata": {"group": int(i % 4), "lang": "en" if i % 3 else "de"},
            }
        )
    return docs


def random_query(seed: int, dim: int = DIM) -> dict:
    rng = np.random.default_rng(seed)
    cols = np.sort(rng.choice(dim, 5, replace=False))
    return {"indices": cols.tolist(), "values": np.round(rng.uniform(0.1, 2, 5), 3).tolist()}


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    base = {
        "data_dir": data_dir,
        "warmup": False,
        "seal_rows": 10_000,
        "flat_segment_rows": 50,
        "maintenance_interval_s": 0.2,
    }
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def client(data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(data_dir))) as c:
        yield c


@pytest.fixture
def vec_collection(client: TestClient) -> str:
    r = client.post("/v1/collections", json={"name": "vecs", "encoder": "none", "dim": DIM})
    assert r.status_code == 201, r.text
    return "vecs"


@pytest.fixture(scope="session")
def splade_available() -> str:
    """The offline splade-tiny encoder, or a skip when it is not on this machine."""
    try:
        from encoders import load_encoder

        load_encoder("splade-tiny")
    except Exception as exc:  # no model here: those tests skip with the reason
        pytest.skip(f"splade-tiny not available: {exc}")
    return "splade-tiny"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``lsr serve`` in a subprocess on a free loopback port."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "LSR_WARMUP": "false", **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 300.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "app.cli",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become ready: {self.log.read_text()[-2000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "srv-data").start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def import_dir(data_dir: Path) -> Path:
    """The default import root of the app fixtures (``DATA_DIR/import``)."""
    path = data_dir / "import"
    path.mkdir(parents=True, exist_ok=True)
    return path


def wait_for_job(client: TestClient, job_id: str, seconds: float = 120) -> dict:
    """The job's state once it has ended (done, failed or cancelled)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end in {seconds} s")


def wait_ready(client: TestClient, seconds: float = 300) -> dict:
    """``/readyz`` once the warm-up is done."""
    deadline = time.monotonic() + seconds
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "warm-up did not finish"
        time.sleep(0.05)
    return client.get("/readyz").json()


def kill9_during_writes(
    srv: ServerProcess,
    collection: str,
    threads: list[threading.Thread],
    stop: threading.Event,
    acked: Sized,
    min_acked: int,
) -> None:
    """Start the writer/deleter ``threads``, kill -9 ``srv`` once ``min_acked`` writes are
    acknowledged and ``collection`` has a sealed segment (a deadline only guards against a hang:
    however slow the machine, the test waits for that state), then stop and join them."""
    for t in threads:
        t.start()
    deadline = time.monotonic() + 600
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        while True:
            assert time.monotonic() < deadline, "no seal after 10 minutes of writes"
            if len(acked) >= min_acked:
                segments = c.get(f"/v1/collections/{collection}/stats").json()["segments"]
                if any(s["kind"] == "sealed" for s in segments):
                    break
            time.sleep(0.05)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=60)
