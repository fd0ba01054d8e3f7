"""One system's build, or its queries, alone in a fresh process (for bench_build_scale.py).

    python benchmarks/build_runner.py build --system ours --corpus DIR --index DIR \\
        --threads 2 --params '{"n_postings": 3500}' --result build.json
    python benchmarks/build_runner.py query --system ours --corpus DIR --index DIR \\
        --threads 2 --points 5:0.9,10:0.8 --result query.json

The process reports its own peak RSS (``VmHWM``, see :func:`vm_status_mb`), timings and
sizes in ``--result``. Inputs are read with plain file reads, never through a
memory mapping, so file pages do not count in the resident set. ``build``: ours reads
the Parquet shards through ``SeismicIndex.build_from_shards(..., out=DIR)``, which writes
the index as it builds it (with ``--in-memory``, or where the index lacks that method: the
whole ``.csr`` into memory, ``SeismicIndex.build``, then ``save``);
pyseismic loads the ``.csr`` into a ``SeismicDataset`` chunk by chunk, its own in-memory
way. ``query``: ours memory-maps the saved index (``SeismicIndex.load``, every page
touched once, as pyseismic reads its whole index into memory), pyseismic loads its file;
both answer the corpus' queries at each point, one by one and as one batch.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numba  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from benchmarks.corpora import shard_table  # noqa: E402
from benchmarks.index_systems import Ours, System, time_point, warm_up  # noqa: E402
from benchmarks.pyseismic_lsr import PySeismic, add_rows, import_seismic, new_dataset  # noqa: E402
from index import SeismicIndex  # noqa: E402
from index.bigann import read_csr  # noqa: E402

K = 10
PYSEISMIC_FILE = "index"  # pyseismic's save appends ".index.seismic"
WARM_ROWS = 2000


def vm_status_mb(field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (now) of this process image, in MiB.

    Unlike ``ru_maxrss``, these belong to the memory of this program alone: Linux carries
    ``ru_maxrss`` across ``fork`` + ``exec``, so a child started by a parent holding 1 GB
    would report at least 1 GB whatever it did. ``ru_maxrss`` where /proc is missing.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def shard_paths(corpus: Path) -> list[Path]:
    paths = sorted((corpus / "shards").glob("shard-*.parquet"))
    if not paths:
        raise ValueError(f"no Parquet shards under {corpus / 'shards'}")
    return paths


def build_record(
    label: str, rss_ready: float, marks: tuple[float, float, float, float], cpu: float, index: Path
) -> dict:
    """What a build child reports; ``marks`` are perf_counter() at start, input loaded,
    index built and index saved."""
    t0, loaded, built, saved = marks
    return {
        "input": label,
        "rss_before_input_mb": rss_ready,
        "load_seconds": loaded - t0,
        "build_seconds": built - loaded,
        "total_seconds": built - t0,
        "cpu_seconds": cpu,
        "save_seconds": saved - built,
        "index_bytes": dir_bytes(index),
    }


def build_ours(args: argparse.Namespace, params: dict) -> dict:
    docs = read_csr(args.corpus / "docs.csr", check_indices=False)
    from_shards = hasattr(SeismicIndex, "build_from_shards") and not args.in_memory
    warm = docs.rows(0, min(WARM_ROWS, docs.n_rows))
    SeismicIndex.build(warm, **params)  # compile (or load cached kernels) before timing
    if from_shards:
        with tempfile.TemporaryDirectory() as tmp:
            shard = Path(tmp) / "shard-000000.parquet"
            pq.write_table(shard_table(warm, 0), shard)
            SeismicIndex.build_from_shards([shard], dim=docs.n_cols, out=Path(tmp) / "ix", **params)
    del warm
    rss_ready = vm_status_mb("VmRSS")
    cpu0, t0 = time.process_time(), time.perf_counter()
    if from_shards:
        # The index is written to disk as it is built (the forward index part by part).
        paths = shard_paths(args.corpus)
        SeismicIndex.build_from_shards(paths, dim=docs.n_cols, out=args.index, **params)
        loaded = t0
        built = saved = time.perf_counter()
        label = "Parquet shards (SeismicIndex.build_from_shards, written as built)"
    else:
        csr = docs.rows(0, docs.n_rows)
        loaded = time.perf_counter()
        index = SeismicIndex.build(csr, **params)
        del csr
        built = time.perf_counter()
        index.save(args.index)
        saved = time.perf_counter()
        label = "in-memory CSR"
    cpu = time.process_time() - cpu0
    marks = (t0, loaded, built, saved)
    return build_record(label, rss_ready, marks, cpu, args.index)


def build_pyseismic(args: argparse.Namespace, params: dict) -> dict:
    seismic = import_seismic()
    docs = read_csr(args.corpus / "docs.csr", check_indices=False)
    rss_ready = vm_status_mb("VmRSS")
    cpu0, t0 = time.process_time(), time.perf_counter()
    dataset = new_dataset(seismic, docs.n_cols)
    for a in range(0, docs.n_rows, args.chunk_rows):
        add_rows(seismic, dataset, docs.rows(a, min(docs.n_rows, a + args.chunk_rows)), a)
    loaded = time.perf_counter()
    index = seismic.SeismicIndex.build_from_dataset(
        dataset, num_threads=args.threads, **{"min_cluster_size": 2, **params}
    )
    built = time.perf_counter()
    cpu = time.process_time() - cpu0
    args.index.mkdir(parents=True, exist_ok=True)
    index.save(str(args.index / PYSEISMIC_FILE))
    label = "SeismicDataset.add_documents_by_id from .csr chunks (all in memory)"
    marks = (t0, loaded, built, time.perf_counter())
    return build_record(label, rss_ready, marks, cpu, args.index)


def query(args: argparse.Namespace) -> dict:
    queries = read_csr(args.corpus / "queries.csr").to_scipy()
    t0 = time.perf_counter()
    system: System
    if args.system == "ours":
        system = Ours(SeismicIndex.load(args.index, prefault=True), K)
    else:
        seismic = import_seismic()
        path = str(args.index / f"{PYSEISMIC_FILE}.index.seismic")
        system = PySeismic(seismic, seismic.SeismicIndex.load(path), K)
    load_s = time.perf_counter() - t0
    points = [(int(p.split(":")[0]), float(p.split(":")[1])) for p in args.points.split(",")]
    prepared = {args.system: system.prepare(queries)}
    warm_up({args.system: system}, prepared, points[0], args.threads)
    rows = []
    for point in points:
        m = time_point({args.system: system}, prepared, point, args.threads)[args.system]
        rows.append(
            {
                "query_cut": point[0],
                "heap_factor": point[1],
                "latency_1thread_us_mean": float(m["wall"].mean() * 1e6),
                "latency_allthreads_us_mean": m["batch_seconds"] / queries.shape[0] * 1e6,
                "qps_allthreads": queries.shape[0] / m["batch_seconds"],
                "found": m["found"],
                "batch_found": m["batch_found"],
            }
        )
    return {"load_seconds": load_s, "points": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task", choices=["build", "query"])
    ap.add_argument("--system", choices=["ours", "pyseismic"], required=True)
    ap.add_argument("--corpus", type=Path, required=True, help="folder of docs.csr, shards/")
    ap.add_argument("--index", type=Path, required=True, help="where the index is saved")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--params", default="{}", help="build parameters as JSON")
    ap.add_argument("--points", default="10:0.8", help="query_cut:heap_factor,...")
    ap.add_argument("--chunk-rows", type=int, default=1 << 20, help="pyseismic's load chunks")
    ap.add_argument("--in-memory", action="store_true", help="ours: never build_from_shards")
    ap.add_argument("--result", type=Path, required=True)
    args = ap.parse_args(argv)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    if args.task == "query":
        result = query(args)
    elif args.system == "ours":
        result = build_ours(args, json.loads(args.params))
    else:
        result = build_pyseismic(args, json.loads(args.params))
    result["peak_rss_mb"] = vm_status_mb("VmHWM")
    args.result.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
