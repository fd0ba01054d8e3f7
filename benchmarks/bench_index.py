"""Our Numba Seismic index vs the Rust ``pyseismic-lsr`` on the same sparse vectors.

Builds both indexes with matched settings (n_postings, centroid_fraction,
summary_energy, max_fraction, doc_cut), computes exact ground truth, and for several
(query_cut, heap_factor) points of each system measures Recall@10 and query latency:
single-thread (one query per call, ours and theirs interleaved query by query so that
machine noise hits both alike; wall-clock mean/p50/p99 and thread-CPU mean) and
all-thread (one batch call). Prints one table, writes JSON and a recall-vs-latency PNG
to ``benchmarks/results/``.

Inputs: ``--dataset packages|docstring`` (the shared SPLADE shards), or ``--docs`` and
``--queries`` files (``.npz`` of a scipy CSR matrix, or pyseismic ``.jsonl`` with a
``vector`` token->weight map per line), or ``--generate N`` (synthetic Zipf vectors).

    python benchmarks/bench_index.py --dataset packages
    python benchmarks/bench_index.py --docs d.npz --queries q.npz --out results/mine
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index import SeismicIndex, exact_search, recall_vs_exact  # noqa: E402
from index.vectors import load_vector_shards  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_VECTORS = Path(__file__).resolve().parents[2] / "shared" / "data" / "vectors"
POINTS = [
    (3, 0.9),
    (5, 1.0),
    (5, 0.9),
    (5, 0.8),
    (8, 1.0),
    (8, 0.9),
    (8, 0.8),
    (10, 0.9),
    (10, 0.8),
    (15, 0.8),
    (20, 0.7),
]
K = 10


# ------------------------------------------------------------------ inputs
def read_jsonl(path: Path, vocab: dict[str, int]) -> sp.csr_array:
    """pyseismic's jsonl (``{"id", "content", "vector": {token: weight}}`` per line)."""
    indptr, indices, data = [0], [], []
    with open(path) as f:
        for line in f:
            vec = json.loads(line)["vector"]
            cols = [vocab.setdefault(tok, len(vocab)) for tok in vec]
            order = np.argsort(cols)
            indices.extend(np.asarray(cols)[order].tolist())
            data.extend(np.asarray(list(vec.values()), dtype=np.float32)[order].tolist())
            indptr.append(len(indices))
    return sp.csr_array(
        (np.asarray(data, np.float32), np.asarray(indices, np.int32), np.asarray(indptr, np.int64))
    )


def load_inputs(args: argparse.Namespace) -> tuple[str, sp.csr_array, sp.csr_array]:
    if args.dataset:
        vec_dir = Path(args.vectors_dir)
        docs = load_vector_shards(vec_dir, f"{args.dataset}_docs")
        queries = load_vector_shards(vec_dir, f"{args.dataset}_queries")
        return args.dataset, docs, queries
    if args.generate:
        from tests.index.conftest import zipf_splade

        docs = zipf_splade(args.generate, 30522, 60, seed=1, f16=False)
        queries = zipf_splade(args.n_queries or 500, 30522, 25, seed=2, f16=False)
        return f"generated{args.generate}", docs, queries
    vocab: dict[str, int] = {}
    mats = []
    for path in (Path(args.docs), Path(args.queries)):
        mats.append(read_jsonl(path, vocab) if path.suffix == ".jsonl" else sp.load_npz(path))
    dim = max(m.shape[1] for m in mats) if not vocab else len(vocab)
    docs, queries = (
        sp.csr_array((m.data, m.indices, m.indptr), shape=(m.shape[0], dim)) for m in mats
    )
    return Path(args.docs).stem, docs, queries


# ------------------------------------------------------------- pyseismic
class Rust:
    """Adapter around ``seismic.SeismicIndex`` (pyseismic-lsr) with integer token ids."""

    def __init__(self, docs: sp.csr_array, params: dict, threads: int) -> None:
        import seismic

        self.seismic = seismic
        ds = seismic.SeismicDataset(dim=docs.shape[1])
        ds.add_documents_by_id(
            [str(i) for i in range(docs.shape[0])],
            docs.indices.astype(np.int64),
            docs.data.astype(np.float32),
            docs.indptr.astype(np.int64),
        )
        start = time.perf_counter()
        self.index = seismic.SeismicIndex.build_from_dataset(ds, num_threads=threads, **params)
        self.build_seconds = time.perf_counter() - start
        tmp = Path(tempfile.mkdtemp(prefix="bench-ps-"))
        self.index.save(str(tmp / "ix"))
        self.nbytes = sum(p.stat().st_size for p in tmp.iterdir())
        shutil.rmtree(tmp)

    def prepare(self, queries: sp.csr_array) -> list[tuple[np.ndarray, np.ndarray]]:
        string = self.seismic.get_seismic_string()
        return [
            (
                np.array([str(c) for c in queries.indices[a:b]], dtype=string),
                queries.data[a:b].astype(np.float32),
            )
            for a, b in zip(queries.indptr[:-1], queries.indptr[1:], strict=True)
        ]

    def search_one(self, q: tuple[np.ndarray, np.ndarray], qc: int, hf: float) -> list[int]:
        res = self.index.search("q", q[0], q[1], k=K, query_cut=qc, heap_factor=hf)
        return [int(r[2]) for r in res]

    def search_batch(self, qs: list, qc: int, hf: float, threads: int) -> list[list[int]]:
        ids = np.array([str(i) for i in range(len(qs))], dtype=self.seismic.get_seismic_string())
        res = self.index.batch_search(
            ids,
            [q[0] for q in qs],
            [q[1] for q in qs],
            k=K,
            query_cut=qc,
            heap_factor=hf,
            num_threads=threads,
        )
        return [[int(r[2]) for r in rr] for rr in res]


# ------------------------------------------------------------- measures
def stats_us(samples: list[float]) -> dict:
    a = np.asarray(samples) * 1e6
    return {
        "mean": float(a.mean()),
        "p50": float(np.percentile(a, 50)),
        "p99": float(np.percentile(a, 99)),
    }


def run_points(
    ours: SeismicIndex,
    rust: Rust | None,
    queries: sp.csr_array,
    truth: np.ndarray,
    points: list,
    threads: int,
) -> list[dict]:
    rust_q = rust.prepare(queries) if rust else None
    q_slices = [
        (queries.indices[a:b], queries.data[a:b])
        for a, b in zip(queries.indptr[:-1], queries.indptr[1:], strict=True)
    ]
    rows = []
    for qc, hf in points:
        ours.search_vector(*q_slices[0], k=K, query_cut=qc, heap_factor=hf)  # warm
        w = {"ours": [], "pyseismic": []}
        c = {"ours": [], "pyseismic": []}
        found = {"ours": [], "pyseismic": []}
        for i, (qi, qv) in enumerate(q_slices):
            c0, t0 = time.thread_time(), time.perf_counter()
            ids, _ = ours.search_vector(qi, qv, k=K, query_cut=qc, heap_factor=hf)
            t1, c1 = time.perf_counter(), time.thread_time()
            w["ours"].append(t1 - t0)
            c["ours"].append(c1 - c0)
            found["ours"].append(ids.tolist())
            if rust:
                c0, t0 = time.thread_time(), time.perf_counter()
                res = rust.search_one(rust_q[i], qc, hf)
                t1, c1 = time.perf_counter(), time.thread_time()
                w["pyseismic"].append(t1 - t0)
                c["pyseismic"].append(c1 - c0)
                found["pyseismic"].append(res)
        batch = {}
        start = time.perf_counter()
        ours.search(queries, k=K, query_cut=qc, heap_factor=hf)
        batch["ours"] = (time.perf_counter() - start) / queries.shape[0] * 1e6
        if rust:
            start = time.perf_counter()
            rust.search_batch(rust_q, qc, hf, threads)
            batch["pyseismic"] = (time.perf_counter() - start) / queries.shape[0] * 1e6
        for system in ("ours", "pyseismic") if rust else ("ours",):
            rows.append(
                {
                    "system": system,
                    "query_cut": qc,
                    "heap_factor": hf,
                    "recall@10": recall_vs_exact(found[system], truth),
                    "latency_1thread_us": stats_us(w[system]),
                    "cpu_1thread_us_mean": float(np.mean(c[system]) * 1e6),
                    "latency_allthreads_us_mean": batch[system],
                }
            )
    return rows


def at_recall(rows: list[dict], system: str, target: float, key: str) -> dict | None:
    ok = [r for r in rows if r["system"] == system and r["recall@10"] >= target]
    return min(
        ok, key=lambda r: r[key]["mean"] if isinstance(r[key], dict) else r[key], default=None
    )


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for system, style in (("ours", "o-"), ("pyseismic", "s--")):
        pts = sorted(
            (r["latency_1thread_us"]["mean"], r["recall@10"]) for r in rows if r["system"] == system
        )
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=system)
    ax.set_xlabel("single-thread mean latency (us / query)")
    ax.set_ylabel("Recall@10 vs exact")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def sweep(
    docs: sp.csr_array,
    queries: sp.csr_array,
    truth: np.ndarray,
    grid: list[dict],
    points: list,
    name: str,
    out: Path,
) -> None:
    """Build-parameter sweep of our index only (CPU time per query, noise-robust)."""
    q_slices = [
        (queries.indices[a:b], queries.data[a:b])
        for a, b in zip(queries.indptr[:-1], queries.indptr[1:], strict=True)
    ]
    results = []
    for params in grid:
        start = time.perf_counter()
        idx = SeismicIndex.build(docs, **params)
        built = time.perf_counter() - start
        print(f"{params}: build {built:.1f} s, {idx.nbytes / 1e6:.1f} MB")
        for qc, hf in points:
            idx.search_vector(*q_slices[0], k=K, query_cut=qc, heap_factor=hf)
            idx.stats[:] = 0
            found = []
            c0 = time.thread_time()
            for qi, qv in q_slices:
                found.append(idx.search_vector(qi, qv, k=K, query_cut=qc, heap_factor=hf)[0])
            cpu = (time.thread_time() - c0) / len(q_slices) * 1e6
            row = {
                **params,
                "query_cut": qc,
                "heap_factor": hf,
                "build_seconds": built,
                "index_bytes": idx.nbytes,
                "recall@10": recall_vs_exact(found, truth),
                "cpu_1thread_us_mean": cpu,
                "docs_scored_per_query": float(idx.stats[0] / len(q_slices)),
            }
            results.append(row)
            print(
                f"   qc {qc:2d} hf {hf:4.2f}  R@10 {row['recall@10']:.4f}  cpu {cpu:6.0f} us"
                f"  docs {row['docs_scored_per_query']:6.0f}"
            )
    out.write_text(
        json.dumps(
            {
                "dataset": name,
                "n_queries": len(q_slices),
                "results": results,
                "command": "python benchmarks/bench_index.py " + " ".join(sys.argv[1:]),
            },
            indent=1,
        )
    )
    print(f"wrote {out}")


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=["packages", "docstring"])
    src.add_argument("--docs", help=".npz (scipy CSR) or pyseismic .jsonl documents")
    src.add_argument("--generate", type=int, metavar="N", help="N synthetic documents")
    ap.add_argument("--queries", help="queries file (with --docs)")
    ap.add_argument("--vectors-dir", default=str(SHARED_VECTORS))
    ap.add_argument("--n-queries", type=int, default=None, help="use the first N queries")
    ap.add_argument("--threads", type=int, default=2, help="threads for builds and batches")
    ap.add_argument("--n-postings", type=int, default=3500)
    ap.add_argument("--centroid-fraction", type=float, default=0.1)
    ap.add_argument("--summary-energy", type=float, default=0.4)
    ap.add_argument(
        "--points", default=None, help="query_cut:heap_factor,... (default: a 9-point grid)"
    )
    ap.add_argument("--no-pyseismic", action="store_true", help="only our index")
    ap.add_argument("--out", default=None, help="output stem (default results/index_NAME)")
    ap.add_argument(
        "--sweep",
        default=None,
        metavar="CF:ALPHA,...",
        help="instead: sweep our build params (centroid_fraction:summary_energy)",
    )
    args = ap.parse_args(argv)
    if args.docs and not args.queries:
        ap.error("--docs needs --queries")

    name, docs, queries = load_inputs(args)
    if args.n_queries:
        queries = queries[: args.n_queries]
    points = (
        POINTS
        if not args.points
        else [(int(p.split(":")[0]), float(p.split(":")[1])) for p in args.points.split(",")]
    )
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    build = {
        "n_postings": args.n_postings,
        "centroid_fraction": args.centroid_fraction,
        "summary_energy": args.summary_energy,
        "max_fraction": 1.5,
        "doc_cut": 15,
    }
    print(
        f"{name}: {docs.shape[0]} docs, {queries.shape[0]} queries, "
        f"{docs.nnz / docs.shape[0]:.1f} nnz/doc; build params {build}"
    )

    if args.sweep:
        grid = [
            {"centroid_fraction": float(g.split(":")[0]), "summary_energy": float(g.split(":")[1])}
            for g in args.sweep.split(",")
        ]
        truth, _ = exact_search(docs, queries, k=K)
        out = Path(args.out) if args.out else RESULTS / f"index_sweep_{name}"
        sweep(docs, queries, truth, grid, points, name, out.with_suffix(".json"))
        return 0

    # Warm the JIT on a small slice so that compile time is not counted as build time.
    SeismicIndex.build(docs[: min(2000, docs.shape[0])], **build).search(queries[:2])
    start = time.perf_counter()
    ours = SeismicIndex.build(docs, **build)
    ours_build = time.perf_counter() - start
    tmp = Path(tempfile.mkdtemp(prefix="bench-ours-"))
    ours.save(tmp / "ix")
    ours_bytes = dir_bytes(tmp / "ix")
    ours = SeismicIndex.load(tmp / "ix")
    rust = None if args.no_pyseismic else Rust(docs, {**build, "min_cluster_size": 2}, args.threads)

    exact_search(docs[:100], queries[:2], k=K)
    start = time.perf_counter()
    truth, _ = exact_search(docs, queries, k=K)
    exact_us = (time.perf_counter() - start) / queries.shape[0] * 1e6
    rows = run_points(ours, rust, queries, truth, points, args.threads)
    shutil.rmtree(tmp)

    systems = {"ours": {"build_seconds": ours_build, "index_bytes": ours_bytes}}
    if rust:
        systems["pyseismic"] = {"build_seconds": rust.build_seconds, "index_bytes": rust.nbytes}
    equal = {}
    for target in (0.95, 0.96, 0.98):
        equal[str(target)] = {
            s: (
                lambda r: (
                    r
                    and {
                        "query_cut": r["query_cut"],
                        "heap_factor": r["heap_factor"],
                        "recall@10": r["recall@10"],
                        "latency_1thread_us_mean": r["latency_1thread_us"]["mean"],
                        "cpu_1thread_us_mean": r["cpu_1thread_us_mean"],
                    }
                )
            )(at_recall(rows, s, target, "latency_1thread_us"))
            for s in systems
        }
    report = {
        "dataset": name,
        "n_docs": docs.shape[0],
        "n_queries": queries.shape[0],
        "nnz_per_doc": docs.nnz / docs.shape[0],
        "k": K,
        "threads": args.threads,
        "build_params": build,
        "exact_search_us_per_query_batched": exact_us,
        "systems": systems,
        "points": rows,
        "best_at_recall": equal,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "command": "python benchmarks/bench_index.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
    }

    print(f"\nexact_search (batched, {args.threads} threads): {exact_us:.0f} us/query")
    for s, v in systems.items():
        print(f"{s:10s} build {v['build_seconds']:6.1f} s   index {v['index_bytes'] / 1e6:7.1f} MB")
    print(
        f"\n{'system':10s} {'qc':>3s} {'hf':>4s} {'R@10':>6s} {'1t mean':>8s} {'p50':>7s} "
        f"{'p99':>7s} {'1t cpu':>7s} {'all-t':>7s}   (us/query)"
    )
    for r in rows:
        lt = r["latency_1thread_us"]
        print(
            f"{r['system']:10s} {r['query_cut']:3d} {r['heap_factor']:4.2f} "
            f"{r['recall@10']:6.4f} {lt['mean']:8.0f} {lt['p50']:7.0f} {lt['p99']:7.0f} "
            f"{r['cpu_1thread_us_mean']:7.0f} {r['latency_allthreads_us_mean']:7.0f}"
        )
    print("\nfastest single-thread point reaching each recall:")
    for target, best in equal.items():
        cells = [
            f"{s}: "
            + (
                f"{b['latency_1thread_us_mean']:.0f} us (qc {b['query_cut']}, "
                f"hf {b['heap_factor']}, R {b['recall@10']:.3f})"
                if b
                else "-"
            )
            for s, b in best.items()
        ]
        print(f"  R@10 >= {target}: " + "   ".join(cells))

    stem = Path(args.out) if args.out else RESULTS / f"index_{name}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    plot(rows, stem.with_suffix(".png"), f"{name}: {docs.shape[0]} docs, k={K}")
    print(f"\nwrote {stem.with_suffix('.json')} and {stem.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
