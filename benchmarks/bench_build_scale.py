"""Build at scale, ours vs pyseismic-lsr: time, peak RSS, index size, then recall.

    python benchmarks/bench_build_scale.py --corpus tiled --copies 4
    python benchmarks/bench_build_scale.py --corpus generated --n-docs 8841823 --mean-nnz 120

Corpora (written once to ``--work-dir`` chunk by chunk as a big-ann ``docs.csr`` and
``lsr index``-style Parquet shards, reused while their settings match):
- ``tiled``: the shared splade-tiny documents (``--prefixes``, default packages_docs then
  docstring_docs: 232,332 documents, 12.3M non-zeros) repeated ``--copies`` times, each
  copy after the first with its top ``--top-columns`` columns renamed by a seeded
  permutation (``benchmarks/corpora.py``); ``--n-docs`` keeps the first N rows;
- ``generated``: ``--n-docs`` documents fitted to ``--prefixes`` (default docstring_docs,
  passage-length text like MS MARCO's): lengths scaled to mean ``--mean-nnz``, terms by
  calibrated document frequency, weights from each term's real ones
  (``benchmarks/fitted.py``).
Queries: ``--queries`` held-out real query vectors (tiled: renamed like a random copy).
Ground truth: exact top-10 over the corpus in chunks of ``--gt-chunk-rows`` rows.

Each system builds in its own fresh process (killed past ``--max-rss-gb``; pyseismic is
skipped where its ~57 bytes a non-zero would not fit) with the same input and threads; the peak
RSS is that process' own high-water mark (``VmHWM``; its ``ru_maxrss`` is kept too, but
Linux never reports it below the parent's RSS at the fork). Ours reads the Parquet shards through
``SeismicIndex.build_from_shards`` when the index has it, else the whole CSR into memory
(labelled ``"input": "in-memory CSR"``); pyseismic loads its ``SeismicDataset`` from the
``.csr`` in chunks. Then another process per system answers the queries with the saved
index (ours memory-mapped) at ``--points``. Prints a table, writes JSON (with the machine
record) to ``benchmarks/results/build_scale_<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.corpora import Tiling, load_real, write_corpus  # noqa: E402
from benchmarks.fitted import FittedModel, Generated  # noqa: E402
from benchmarks.ground_truth import chunked_exact  # noqa: E402
from benchmarks.machine import describe, machine_info  # noqa: E402
from benchmarks.scale_processes import (  # noqa: E402
    ChildFailed,
    default_max_rss_mb,
    pyseismic_would_not_fit,
    run_child,
)
from index import recall_vs_exact  # noqa: E402
from index.bigann import read_csr, read_gt, write_csr, write_gt  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_VECTORS = Path(__file__).resolve().parents[2] / "shared" / "data" / "vectors"
MSMARCO_DOCS = 8_841_823
K = 10


def corpus_spec(args: argparse.Namespace) -> dict:
    """Everything that decides the documents (a written corpus is reused while equal)."""
    spec = {"kind": args.corpus, "prefixes": args.prefixes, "seed": args.seed}
    spec["chunk_rows"] = args.chunk_rows
    if args.corpus == "tiled":
        return {
            **spec,
            "copies": args.copies,
            "top_columns": args.top_columns,
            "n_docs": args.n_docs,
        }
    return {**spec, "n_docs": args.n_docs or MSMARCO_DOCS, "mean_nnz": args.mean_nnz}


def make_tiling(args: argparse.Namespace) -> Tiling:
    docs = load_real(args.vectors_dir, [f"{p}_docs" for p in args.prefixes])
    return Tiling.make(docs, args.copies, args.top_columns, args.seed, args.n_docs)


def make_source(args: argparse.Namespace) -> Tiling | Generated:
    """The corpus as a row source (the tiling is cheap; the fit takes a few seconds)."""
    if args.corpus == "tiled":
        return make_tiling(args)
    docs = load_real(args.vectors_dir, [f"{p}_docs" for p in args.prefixes])
    print("fitting the generator to the real vectors ...", flush=True)
    model = FittedModel.fit(docs, args.mean_nnz, seed=args.seed)
    return Generated.make(model, args.n_docs or MSMARCO_DOCS, args.seed, args.chunk_rows)


def read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def prepare_corpus(args: argparse.Namespace, work: Path) -> dict:
    """Write (or reuse) ``work/docs.csr`` and ``work/shards/``; returns its description."""
    spec = corpus_spec(args)
    info = read_json(work / "corpus.json")
    if info is not None and info["spec"] == spec and (work / "docs.csr").is_file():
        print(f"reusing the corpus in {work}")
        return info
    for old in ("docs.csr", "shards", "queries.csr", "gt.bin", "queries.json", "corpus.json"):
        if (work / old).is_dir():
            shutil.rmtree(work / old)
        else:
            (work / old).unlink(missing_ok=True)
    start = time.perf_counter()
    source = make_source(args)
    written = write_corpus(source, work, args.chunk_rows, parquet=not args.no_parquet)
    info = {
        "spec": spec,
        **written,
        "dim": source.dim,
        "nnz_per_doc": written["nnz"] / written["n_docs"],
        "write_seconds": time.perf_counter() - start,
        "docs_csr_bytes": (work / "docs.csr").stat().st_size,
        "shards_bytes": sum(p.stat().st_size for p in (work / "shards").glob("*.parquet"))
        if not args.no_parquet
        else 0,
    }
    if isinstance(source, Generated):
        info["fit"] = source.model.fit_error
    (work / "corpus.json").write_text(json.dumps(info, indent=1))
    return info


def prepare_queries(args: argparse.Namespace, work: Path) -> dict:
    """Write (or reuse) ``work/queries.csr`` and its exact top-10 ``work/gt.bin``."""
    spec = {"n_queries": args.queries, "seed": args.seed, "gt_k": K}
    info = read_json(work / "queries.json")
    if info is not None and info["spec"] == spec and (work / "gt.bin").is_file():
        print("reusing the queries and ground truth")
        return info
    pool = load_real(args.vectors_dir, [f"{p}_queries" for p in args.prefixes])
    if args.corpus == "tiled":
        queries, _ = make_tiling(args).queries(pool, args.queries, args.seed)
        origin = f"held-out real queries of {args.prefixes}, each renamed like a random copy"
    else:
        if args.queries > pool.shape[0]:
            raise ValueError(f"--queries {args.queries}: only {pool.shape[0]} real queries")
        rng = np.random.default_rng([args.seed, 2])
        chosen = np.sort(rng.choice(pool.shape[0], args.queries, replace=False))
        queries = sp.csr_array(pool[chosen])
        origin = f"held-out real queries of {args.prefixes}"
    write_csr(work / "queries.csr", queries)
    ids, scores, seconds = chunked_exact(
        read_csr(work / "docs.csr", check_indices=False), queries, K, args.gt_chunk_rows
    )
    write_gt(work / "gt.bin", ids, scores)
    info = {
        "spec": spec,
        "origin": origin,
        "gt_seconds": seconds,
        "gt_chunk_rows": args.gt_chunk_rows,
    }
    (work / "queries.json").write_text(json.dumps(info, indent=1))
    return info


def with_recall(query_result: dict, truth: np.ndarray) -> list[dict]:
    rows = []
    for p in query_result["points"]:
        found, batch = p.pop("found"), p.pop("batch_found")
        rows.append(
            {
                **p,
                "recall@10": recall_vs_exact(found, truth),
                "recall@10_batch": recall_vs_exact(batch, truth),
            }
        )
    return rows


def print_table(report: dict) -> None:
    c = report["corpus"]
    print(
        f"\n{report['name']}: {c['n_docs']:,} docs x {c['nnz_per_doc']:.1f} nnz = {c['nnz']:,} "
        f"non-zeros (.csr {c['docs_csr_bytes'] / 2**30:.2f} GiB), {report['threads']} threads"
    )
    header = f"{'system':10s} {'total s':>8s} {'build s':>8s} {'peak RSS':>9s} {'index':>8s}"
    first = next(iter(report["systems"].values()), None)
    points = (
        [f"({p['query_cut']},{p['heap_factor']})" for p in first["query"]["points"]]
        if first
        else []
    )
    print(header + "".join(f" {p:>15s}" for p in points) + "   (R@10 / 1-thread us)")
    for name, s in report["systems"].items():
        cells = "".join(
            f" {p['recall@10']:7.4f} {p['latency_1thread_us_mean']:7.0f}"
            for p in s["query"]["points"]
        )
        print(
            f"{name:10s} {s['total_seconds']:8.1f} {s['build_seconds']:8.1f} "
            f"{s['peak_rss_mb'] / 1024:7.2f}GB {s['index_bytes'] / 2**20:6.0f}MB{cells}"
        )
        print(f"{'':10s} input: {s['input']}")
    for kind in ("skipped", "failed"):
        for name, why in report[kind].items():
            print(f"{name:10s} {kind}: {why.splitlines()[0]}")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=["generated", "tiled"], default="generated")
    ap.add_argument(
        "--n-docs",
        "--docs",
        type=int,
        default=None,
        help=f"generated: documents (default {MSMARCO_DOCS:,}); tiled: keep the first N rows",
    )
    ap.add_argument("--mean-nnz", "--nnz", type=float, default=120.0, help="generated only")
    ap.add_argument("--copies", type=int, default=4, help="tiled only")
    ap.add_argument("--top-columns", type=int, default=20_000, help="tiled: columns renamed")
    ap.add_argument(
        "--prefixes",
        default=None,
        help="shared vector sets (default: tiled packages,docstring; generated docstring)",
    )
    ap.add_argument("--vectors-dir", default=str(SHARED_VECTORS))
    ap.add_argument("--queries", type=int, default=1000, help="held-out real queries")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--systems", default="ours,pyseismic")
    ap.add_argument("--points", default="5:0.9,10:0.8,20:0.7", help="query_cut:heap_factor,...")
    ap.add_argument("--n-postings", type=int, default=3500)
    ap.add_argument("--centroid-fraction", type=float, default=0.1)
    ap.add_argument("--summary-energy", type=float, default=0.4)
    ap.add_argument("--chunk-rows", type=int, default=100_000, help="rows per chunk and shard")
    ap.add_argument("--gt-chunk-rows", type=int, default=500_000, help="exact top-k chunks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default=None, help="result name (default from the corpus)")
    ap.add_argument("--work-dir", default=None, help="corpus and index folder (large)")
    ap.add_argument("--out", default=None, help="result JSON (default results/build_scale_NAME)")
    ap.add_argument("--no-parquet", action="store_true", help="write only docs.csr")
    ap.add_argument("--in-memory", action="store_true", help="ours: never build_from_shards")
    ap.add_argument("--keep-indexes", action="store_true", help="keep the built indexes")
    ap.add_argument("--force", action="store_true", help="run pyseismic even if short of memory")
    ap.add_argument(
        "--max-rss-gb",
        type=float,
        default=None,
        help="kill a build or query process past this RSS (default 90%% of available memory)",
    )
    ap.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    return ap


def default_name(args: argparse.Namespace) -> str:
    if args.corpus == "tiled":
        return f"tiled_x{args.copies}" + (f"_{args.n_docs}" if args.n_docs else "")
    return f"generated_{args.n_docs or MSMARCO_DOCS}"


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    args.prefixes = (
        args.prefixes or ("packages,docstring" if args.corpus == "tiled" else "docstring")
    ).split(",")
    args.max_rss_mb = args.max_rss_gb * 1024 if args.max_rss_gb else default_max_rss_mb()
    if args.no_parquet and not args.in_memory:
        args.in_memory = True  # without shards ours can only read the CSR
    name = args.name or default_name(args)
    work = Path(args.work_dir or Path(tempfile.gettempdir()) / "lsr-build-scale" / name)
    work.mkdir(parents=True, exist_ok=True)
    systems = [s for s in args.systems.split(",") if s]
    params = {
        "n_postings": args.n_postings,
        "centroid_fraction": args.centroid_fraction,
        "summary_energy": args.summary_energy,
        "max_fraction": 1.5,
        "doc_cut": 15,
    }
    if args.prepare_only:
        prepare_corpus(args, work)
        prepare_queries(args, work)
        return 0
    machine = machine_info()
    print(f"machine: {describe(machine)}; work dir {work}", flush=True)
    # Corpus and ground truth are made by a child process, so that this one stays small
    # while the builds run.
    given = sys.argv[1:] if argv is None else list(argv)
    cmd = [sys.executable, str(Path(__file__).resolve()), *given]
    subprocess.run([*cmd, "--work-dir", str(work), "--prepare-only"], check=True)
    corpus = read_json(work / "corpus.json")
    queries = read_json(work / "queries.json")
    truth = np.asarray(read_gt(work / "gt.bin")[0], dtype=np.int64)
    report = {
        "name": name,
        "corpus": corpus,
        "queries": {**queries, "n_queries": int(truth.shape[0])},
        "threads": args.threads,
        "build_params": params,
        "systems": {},
        "skipped": {},
        "failed": {},
        "max_rss_mb": args.max_rss_mb,
        "machine": machine,
        "command": "python benchmarks/bench_build_scale.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
    }
    for system in systems:
        reason = pyseismic_would_not_fit(corpus["nnz"]) if system == "pyseismic" else None
        if reason and not args.force:
            print(f"skipping pyseismic: {reason}")
            report["skipped"][system] = reason
            continue
        print(f"building with {system} ...", flush=True)
        try:
            built = run_child("build", system, work, args, params)
            print(
                f"  {built['total_seconds']:.1f} s, peak RSS {built['peak_rss_mb'] / 1024:.2f} GB"
            )
            answered = run_child("query", system, work, args, params)
        except ChildFailed as exc:
            print(f"  failed: {exc}")
            report["failed"][system] = str(exc)
            shutil.rmtree(work / f"index_{system}", ignore_errors=True)
            continue
        built["query"] = {
            "load_seconds": answered["load_seconds"],
            "peak_rss_mb": answered["peak_rss_mb"],
            "points": with_recall(answered, truth),
        }
        report["systems"][system] = built
        if not args.keep_indexes:
            shutil.rmtree(work / f"index_{system}", ignore_errors=True)
    print_table(report)
    out = Path(args.out) if args.out else RESULTS / f"build_scale_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
