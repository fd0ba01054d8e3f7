"""Our Numba Seismic index vs the Rust ``pyseismic-lsr`` on the same sparse vectors.

Builds both indexes with matched settings (n_postings, centroid_fraction,
summary_energy, max_fraction, doc_cut), takes exact ground truth (``exact_search``, or a
big-ann ground-truth file), and for several (query_cut, heap_factor) points of each system
measures Recall@10 and query latency: single-thread (one query per call, ours and theirs
interleaved query by query so that machine noise hits both alike; wall-clock mean/p50/p99
and thread-CPU mean; ``--repeat N`` keeps each query's minimum of N rounds) and all-thread
(one batch call; its queries per second is big-ann-benchmarks' sparse-track metric,
reported at Recall@10 >= 0.9). Nothing compiled or paged in for the first time is timed
(see ``benchmarks/index_systems.py``). Prints one table, writes JSON (with the machine
record) and a recall-vs-latency PNG to ``benchmarks/results/``.

Inputs: ``--dataset packages|docstring`` (the shared SPLADE shards), or ``--docs`` and
``--queries`` files (``.npz`` of a scipy CSR matrix, pyseismic ``.jsonl`` with a
``vector`` token->weight map per line, or big-ann ``.csr``; ``--gt`` a big-ann ground
truth), or ``--generate N`` (synthetic Zipf vectors).

    python benchmarks/bench_index.py --dataset packages
    python benchmarks/bench_index.py --docs base.csr --queries queries.csr --gt gt.bin
    lsr bench index --docs d.npz --queries q.npz --out results/mine
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.index_inputs import load_inputs  # noqa: E402
from benchmarks.index_report import format_report, plot, summaries  # noqa: E402
from benchmarks.index_systems import Ours, OursExact, System, run_points  # noqa: E402
from benchmarks.machine import describe, machine_info  # noqa: E402
from benchmarks.pyseismic_lsr import PySeismic  # noqa: E402
from index import SeismicIndex, exact_search, recall_vs_exact  # noqa: E402

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


def parse_points(text: str | None) -> list[tuple[int, float]]:
    """``"5:0.9,10:0.8"`` -> [(5, 0.9), (10, 0.8)]; ``None`` -> the default grid."""
    if not text:
        return list(POINTS)
    points = []
    for item in text.split(","):
        qc, _, hf = item.partition(":")
        try:
            points.append((int(qc), float(hf)))
        except ValueError:
            raise ValueError(f"bad point {item!r}: expected query_cut:heap_factor") from None
    return points


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
        for qi, qv in q_slices:  # untimed pass: compilation and first touches
            idx.search_vector(qi, qv, k=K, query_cut=points[0][0], heap_factor=points[0][1])
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
                "machine": machine_info(),
                "command": "python benchmarks/bench_index.py " + " ".join(sys.argv[1:]),
            },
            indent=1,
        )
    )
    print(f"wrote {out}")


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build_ours(docs: sp.csr_array, queries: sp.csr_array, build: dict, tmp: Path) -> tuple:
    """Build (JIT warmed on a slice first), save, and memory-map ours back.

    Returns (index, build seconds, saved bytes).
    """
    SeismicIndex.build(docs[: min(2000, docs.shape[0])], **build).search(queries[:2])
    start = time.perf_counter()
    ours = SeismicIndex.build(docs, **build)
    seconds = time.perf_counter() - start
    ours.save(tmp / "ix")
    return SeismicIndex.load(tmp / "ix", prefault=True), seconds, dir_bytes(tmp / "ix")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=["packages", "docstring"])
    src.add_argument("--docs", help=".npz (scipy CSR), pyseismic .jsonl or big-ann .csr documents")
    src.add_argument("--generate", type=int, metavar="N", help="N synthetic documents")
    ap.add_argument("--queries", help="queries file (with --docs), same kinds as --docs")
    ap.add_argument("--gt", help="big-ann ground-truth file for --queries (else exact_search)")
    ap.add_argument("--vectors-dir", default=str(SHARED_VECTORS))
    ap.add_argument("--n-queries", type=int, default=None, help="use the first N queries")
    ap.add_argument("--threads", type=int, default=2, help="threads for builds and batches")
    ap.add_argument("--repeat", type=int, default=1, help="timing rounds; per-query minimum")
    ap.add_argument("--n-postings", type=int, default=3500)
    ap.add_argument("--centroid-fraction", type=float, default=0.1)
    ap.add_argument("--summary-energy", type=float, default=0.4)
    ap.add_argument(
        "--points", default=None, help="query_cut:heap_factor,... (default: an 11-point grid)"
    )
    ap.add_argument("--no-pyseismic", action="store_true", help="only our index")
    ap.add_argument(
        "--no-exact-mode",
        dest="exact_mode",
        action="store_false",
        help="leave out our exact mode (system ours-exact: recall 1, timed once)",
    )
    ap.add_argument("--out", default=None, help="output stem (default results/index_NAME)")
    ap.add_argument(
        "--sweep",
        default=None,
        metavar="CF:ALPHA,...",
        help="instead: sweep our build params (centroid_fraction:summary_energy)",
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.docs and not args.queries:
        ap.error("--docs needs --queries")
    if args.gt and not args.docs:
        ap.error("--gt goes with --docs and --queries")
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    try:
        points = parse_points(args.points)
        inputs = load_inputs(args, K)
    except ValueError as exc:
        ap.error(str(exc))
    name, docs, queries = inputs.name, inputs.docs, inputs.queries
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    build = {
        "n_postings": args.n_postings,
        "centroid_fraction": args.centroid_fraction,
        "summary_energy": args.summary_energy,
        "max_fraction": 1.5,
        "doc_cut": 15,
    }
    machine = machine_info()
    print(f"machine: {describe(machine)}")
    print(
        f"{name}: {docs.shape[0]} docs, {queries.shape[0]} queries, "
        f"{docs.nnz / docs.shape[0]:.1f} nnz/doc; build params {build}"
    )

    if args.sweep:
        grid = [
            {"centroid_fraction": float(g.split(":")[0]), "summary_energy": float(g.split(":")[1])}
            for g in args.sweep.split(",")
        ]
        truth = inputs.truth if inputs.truth is not None else exact_search(docs, queries, k=K)[0]
        out = Path(args.out) if args.out else RESULTS / f"index_sweep_{name}"
        sweep(docs, queries, truth, grid, points, name, out.with_suffix(".json"))
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="bench-ours-"))
    try:
        ours, ours_build, ours_bytes = build_ours(docs, queries, build, tmp)
        systems: dict[str, System] = {"ours": Ours(ours, K)}
        if args.exact_mode and ours.can_certify:
            systems["ours-exact"] = OursExact(ours, K)
        built = {"ours": {"build_seconds": ours_build, "index_bytes": ours_bytes}}
        if not args.no_pyseismic:
            rust = PySeismic.build(docs, {**build, "min_cluster_size": 2}, args.threads, K)
            systems["pyseismic"] = rust
            built["pyseismic"] = {
                "build_seconds": rust.build_seconds,
                "dataset_load_seconds": rust.load_seconds,
                "index_bytes": rust.saved_bytes(),
            }
        exact_us = None
        truth = inputs.truth
        if truth is None:
            exact_search(docs[:100], queries[:2], k=K)  # compile outside the timed call
            start = time.perf_counter()
            truth, _ = exact_search(docs, queries, k=K)
            exact_us = (time.perf_counter() - start) / queries.shape[0] * 1e6
        rows = run_points(systems, queries, truth, points, args.threads, args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    report = {
        "dataset": name,
        "n_docs": docs.shape[0],
        "n_queries": queries.shape[0],
        "nnz_per_doc": docs.nnz / docs.shape[0],
        "k": K,
        "threads": args.threads,
        "repeat": args.repeat,
        "build_params": build,
        "ground_truth": inputs.truth_source,
        "exact_search_us_per_query_batched": exact_us,
        "systems": built,
        "points": rows,
        **summaries(rows, list(systems)),
        "machine": machine,
        "command": "python benchmarks/bench_index.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
    }
    print()
    print(format_report(report))
    stem = Path(args.out) if args.out else RESULTS / f"index_{name}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    png = stem.with_suffix(".png")
    drawn = plot(rows, png, f"{name}: {docs.shape[0]} docs, k={K}")
    print(f"\nwrote {stem.with_suffix('.json')}" + (f" and {png}" if drawn else " (no matplotlib)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
