"""Load test of the REST service on loopback: QPS and p50/p99 for vector and text search,
next to the bare index and the in-process collection latency (the baselines).

    python benchmarks/bench_api.py --duration 15 --concurrency 16

Builds (once) a collection of the shared ``packages_docs`` vectors (splade-tiny encoded, so text
queries encoded by splade-tiny search them too) under ``--data-dir``, starts ``lsr serve`` as a
subprocess, and drives it with a small keep-alive HTTP/1.1 client on asyncio (one connection per
simulated client, closed loop). Writes ``benchmarks/results/bench_api.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
VECTORS = ROOT.parent / "shared" / "data" / "vectors"
RESULTS = ROOT / "benchmarks" / "results"


def percentiles(lat_s: list[float]) -> dict[str, float]:
    a = np.asarray(lat_s) * 1000.0
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
    }


def build_collection(data_dir: Path, docs) -> None:  # noqa: ANN001 - a csr_array
    from app.services.registry import CollectionRegistry
    from app.settings import Settings
    from app.storage.collection import Collection, CollectionConfig
    from app.storage.vectors import SparseVector

    path = data_dir / "collections" / "packages"
    if (path / "manifest.json").exists():
        return
    registry = CollectionRegistry(Settings(data_dir=data_dir))
    registry.root.mkdir(parents=True, exist_ok=True)
    config = CollectionConfig("packages", "splade-tiny", docs.shape[1], {}, {}, time.time())
    coll = Collection.create(path, config, registry.policy)
    start = time.perf_counter()
    for lo in range(0, docs.shape[0], 5000):
        block = docs[lo : lo + 5000]
        vecs = []
        for i in range(block.shape[0]):
            a, b = block.indptr[i], block.indptr[i + 1]
            vecs.append(
                SparseVector(
                    block.indices[a:b].astype(np.int32),
                    block.data[a:b].astype(np.float16).astype(np.float32),
                )
            )
        ids = [f"p{lo + i}" for i in range(block.shape[0])]
        coll.write(ids, vecs, [None] * len(ids), upsert=False)
    wrote = time.perf_counter() - start
    coll.seal()
    print(f"built collection: write {wrote:.1f}s, seal {time.perf_counter() - start - wrote:.1f}s")
    coll.close()


def baselines(data_dir: Path, queries, n: int) -> dict:  # noqa: ANN001
    """Bare ``SeismicIndex.search_vector`` and in-process ``Collection.search`` per query."""
    from app.services.registry import CollectionRegistry
    from app.settings import Settings
    from app.storage.collection import Collection
    from app.storage.vectors import SparseVector

    registry = CollectionRegistry(Settings(data_dir=data_dir))
    coll = Collection.open(data_dir / "collections" / "packages", registry.policy)
    index = next(s.index for s in coll.sealed_segments() if s.index is not None)
    qs = []
    for i in range(n):
        a, b = queries.indptr[i], queries.indptr[i + 1]
        qs.append(
            SparseVector(
                queries.indices[a:b].astype(np.int32), queries.data[a:b].astype(np.float32)
            )
        )
    for q in qs[:50]:
        index.search_vector(q.indices, q.values, k=10)
    out = {}
    lat = []
    for q in qs:
        t = time.perf_counter()
        index.search_vector(q.indices, q.values, k=10)
        lat.append(time.perf_counter() - t)
    out["bare_index"] = percentiles(lat)
    lat = []
    for q in qs:
        t = time.perf_counter()
        coll.search([q], 10)
        lat.append(time.perf_counter() - t)
    out["collection_in_process"] = percentiles(lat)
    coll.close()
    return out


async def _worker(
    port: int,
    path: bytes,
    bodies: list[bytes],
    offset: int,
    t_start: float,
    t_end: float,
    lat: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while True:
            now = time.perf_counter()
            if now >= t_end:
                return
            body = bodies[i % len(bodies)]
            i += 1
            writer.write(
                b"POST %s HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (path, len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            done = time.perf_counter()
            if now >= t_start:
                lat.append(done - now)
                if status != 200:
                    errors.append(status)
    finally:
        writer.close()


async def load(
    port: int, path: str, bodies: list[bytes], concurrency: int, warmup: float, duration: float
) -> dict:
    lat: list[float] = []
    errors: list[int] = []
    t0 = time.perf_counter()
    t_start, t_end = t0 + warmup, t0 + warmup + duration
    await asyncio.gather(
        *[
            _worker(port, path.encode(), bodies, c * 97, t_start, t_end, lat, errors)
            for c in range(concurrency)
        ]
    )
    return {
        "loadavg_1m": os.getloadavg()[0],
        "requests": len(lat),
        "errors": len(errors),
        "qps": len(lat) / duration,
        "concurrency": concurrency,
        "duration_s": duration,
        **percentiles(lat),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/lsr-bench-api"))
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", default="4,8,16", help="clients, comma-separated sweep")
    parser.add_argument("--text-concurrency", default="8,32")
    parser.add_argument("--threads", type=int, default=2, help="server worker threads")
    parser.add_argument("--skip-text", action="store_true")
    parser.add_argument("--skip-vector", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_api.json")
    args = parser.parse_args()

    from index.vectors import load_vector_shards

    docs = load_vector_shards(VECTORS, "packages_docs")
    queries = load_vector_shards(VECTORS, "packages_queries")
    with gzip.open(VECTORS / "packages_queries.txt.gz", "rt", encoding="utf-8") as handle:
        texts = [line.rstrip("\n")[:2000] or "empty" for line in handle]
    build_collection(args.data_dir, docs)
    load_before = os.getloadavg()
    result: dict = {
        "docs": int(docs.shape[0]),
        "queries": int(queries.shape[0]),
        "cpus": os.cpu_count(),
        "loadavg_before": load_before,
    }
    result.update(baselines(args.data_dir, queries, queries.shape[0]))

    vec_bodies = []
    for i in range(queries.shape[0]):
        a, b = queries.indptr[i], queries.indptr[i + 1]
        vec_bodies.append(
            json.dumps(
                {
                    "vector": {
                        "indices": queries.indices[a:b].tolist(),
                        "values": [round(float(v), 4) for v in queries.data[a:b]],
                    },
                    "k": 10,
                }
            ).encode()
        )
    text_bodies = [json.dumps({"query": t, "k": 10}).encode() for t in texts]

    port = free_port()
    env = {**os.environ, "LSR_THREADS": str(args.threads)}
    log = open(args.data_dir / "server.log", "ab")  # noqa: SIM115
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "serve",
            "--data-dir",
            str(args.data_dir),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        import httpx

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        path = "/v1/collections/packages/search"
        for c in () if args.skip_vector else (int(x) for x in args.concurrency.split(",")):
            result[f"http_vector_c{c}"] = asyncio.run(
                load(port, path, vec_bodies, c, args.warmup, args.duration)
            )
        if not args.skip_text:
            for c in (int(x) for x in args.text_concurrency.split(",")):
                result[f"http_text_c{c}"] = asyncio.run(
                    load(port, path, text_bodies, c, args.warmup, args.duration)
                )
    finally:
        server.terminate()
        server.wait(timeout=30)
    result["loadavg_after"] = os.getloadavg()

    print(f"{'what':<26}{'QPS':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'load 1m':>9}")
    for key in [k for k in result if k == "bare_index" or k.startswith(("collection", "http"))]:
        r = result[key]
        qps = r.get("qps", 1000.0 / r["mean_ms"])  # one client in process: 1 / mean latency
        print(
            f"{key:<26}{qps:>9.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r.get('errors', 0):>8}"
            f"{r.get('loadavg_1m', float('nan')):>9.1f}"
        )
    print(f"load average before {load_before}, after {result['loadavg_after']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
