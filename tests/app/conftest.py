"""Fixtures for the service tests: an in-process app, a real ``lsr serve`` process, data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.conftest import PATIENCE_S

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

    def start(self, timeout: float = PATIENCE_S) -> ServerProcess:
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


def wait_for_job(client: TestClient, job_id: str, seconds: float = PATIENCE_S) -> dict:
    """The job's state once it has ended (done, failed or cancelled)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end in {seconds} s")


def wait_ready(client: TestClient, seconds: float = PATIENCE_S) -> dict:
    """``/readyz`` once the warm-up is done."""
    deadline = time.monotonic() + seconds
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "warm-up did not finish"
        time.sleep(0.05)
    return client.get("/readyz").json()


class CrashLoad:
    """Writers and a deleter against one collection of a server, killed with SIGKILL once
    enough is acknowledged and a seal has run; then what a restarted server holds is checked
    against what was acknowledged. ``batch(seed, start)`` makes one write's documents.

    Exact about requests in flight at the kill: a write in flight may be applied or not, but
    whole; a delete in flight may be applied or not; nothing else may differ."""

    def __init__(self, collection: str, batch: Callable[[int, int], list[dict]], batch_size: int,
                 delete_every: int, delete_count: int) -> None:  # fmt: skip
        self.collection = collection
        self.batch, self.batch_size = batch, batch_size
        self.delete_every, self.delete_count = delete_every, delete_count
        self.acked: dict[str, dict] = {}
        self.deleted: set[str] = set()  # deletes acknowledged
        self.maybe_deleted: set[str] = set()  # deletes sent, not acknowledged (in flight)
        self.sent: list[list[dict]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def _writer(self, url: str, w: int) -> None:
        with httpx.Client(base_url=url, timeout=300) as c:
            for b in range(10_000):
                if self.stop.is_set():
                    return
                seed = w * 100_000 + b
                docs = self.batch(seed, seed * self.batch_size)
                with self.lock:
                    self.sent.append(docs)
                try:
                    r = c.put(f"/v1/collections/{self.collection}/documents",
                              json={"documents": docs})  # fmt: skip
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    with self.lock:
                        self.acked.update({d["id"]: d for d in docs})

    def _deleter(self, url: str) -> None:
        with httpx.Client(base_url=url, timeout=300) as c:
            while not self.stop.is_set():
                with self.lock:
                    victims = [i for i in list(self.acked)[:: self.delete_every]
                               if i not in self.deleted][: self.delete_count]  # fmt: skip
                    self.maybe_deleted.update(victims)
                if not victims:
                    self.stop.wait(0.02)  # pacing, not synchronisation: nothing to delete yet
                    continue
                try:
                    r = c.request("DELETE", f"/v1/collections/{self.collection}/documents",
                                  json={"ids": victims})  # fmt: skip
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    with self.lock:
                        self.deleted.update(r.json()["ids"])
                        self.maybe_deleted.difference_update(victims)

    def run_and_kill(self, srv: ServerProcess, writers: int, min_acked: int) -> None:
        """Start ``writers`` writers and the deleter, kill -9 ``srv`` once ``min_acked`` writes
        are acknowledged and the collection has a sealed segment (a deadline only guards against
        a hang: however slow the machine, the test waits for that state), join them."""
        threads = [threading.Thread(target=self._writer, args=(srv.url, w))
                   for w in range(writers)]  # fmt: skip
        threads.append(threading.Thread(target=self._deleter, args=(srv.url,)))
        for t in threads:
            t.start()
        deadline = time.monotonic() + PATIENCE_S
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            while True:
                assert time.monotonic() < deadline, f"no seal after {PATIENCE_S:.0f} s of writes"
                if len(self.acked) >= min_acked:
                    stats = c.get(f"/v1/collections/{self.collection}/stats").json()
                    if any(s["kind"] == "sealed" for s in stats["segments"]):
                        break
                time.sleep(0.05)
        srv.kill9()
        self.stop.set()
        for t in threads:
            t.join(timeout=60)

    def check_restarted(self, c: httpx.Client) -> dict[str, httpx.Response]:
        """Every batch sent is whole or absent (deletes aside), every acknowledged write and
        delete holds, the count agrees; returns the present documents' GET answers by id."""
        present: dict[str, httpx.Response] = {}
        for docs in self.sent:
            found = {d["id"]: c.get(f"/v1/collections/{self.collection}/documents/{d['id']}")
                     for d in docs}  # fmt: skip
            here = {i for i, r in found.items() if r.status_code == 200}
            gone = {i for i, r in found.items() if r.status_code == 404}
            assert here | gone == set(found), "a GET answered neither 200 nor 404"
            assert not here or gone <= self.deleted | self.maybe_deleted, sorted(gone)  # whole
            present.update({i: found[i] for i in here})
        for doc_id in self.acked:
            if doc_id in self.deleted:
                assert doc_id not in present, f"acknowledged delete of {doc_id} lost"
            elif doc_id not in self.maybe_deleted:
                assert doc_id in present, f"acknowledged write of {doc_id} lost"
        assert c.get(f"/v1/collections/{self.collection}").json()["documents"] == len(present)
        return present
