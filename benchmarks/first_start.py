"""Time ``lsr serve`` from launch to ``/readyz`` 200 with a cold Numba cache (a fresh
``NUMBA_CACHE_DIR``), as on the first start after an install, and print the warm-up log.

    python benchmarks/first_start.py --data-dir /tmp/fs-empty           # an empty data dir
    python benchmarks/first_start.py --data-dir /tmp/fs-full --populate  # a sealed, indexed
                                         # segment of 2,500 vectors + a splade-tiny collection
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def populate(data_dir: Path) -> None:
    """A vector collection with one sealed, indexed segment and a small text collection."""
    from fastapi.testclient import TestClient

    from app.main import create_app
    from tests.app.conftest import make_settings, random_docs

    settings = make_settings(data_dir, flat_segment_rows=2000)
    with TestClient(create_app(settings)) as client:
        client.post("/v1/collections", json={"name": "vecs", "encoder": "none", "dim": 200})
        for b in range(5):
            docs = random_docs(500, seed=b, start=b * 500)
            client.post("/v1/collections/vecs/documents", json={"documents": docs})
        client.post("/v1/collections/vecs/seal")
        client.post("/v1/collections", json={"name": "text", "encoder": "splade-tiny"})
        docs = [{"id": "a", "text": "wing flutter"}]
        client.post("/v1/collections/text/documents", json={"documents": docs})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--populate", action="store_true", help="create the two collections")
    args = parser.parse_args()
    if args.populate:
        populate(args.data_dir)
    cache = tempfile.mkdtemp(prefix="numba-cold-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, "LSR_WARMUP": "true"}
    cmd = [sys.executable, "-m", "app.cli", "serve", "--data-dir", str(args.data_dir),
           "--port", str(port)]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise SystemExit("the server exited")
            time.sleep(0.2)
        ready = time.monotonic() - start
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
        shutil.rmtree(cache, ignore_errors=True)
    print(f"ready after {ready:.1f} s (cold Numba cache, load {os.getloadavg()[0]:.1f})")
    print("\n".join(line for line in out.splitlines() if "warm-up" in line))


if __name__ == "__main__":
    main()
