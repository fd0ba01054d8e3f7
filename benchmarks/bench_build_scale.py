"""Build the index at scale: time, peak memory, cores used, size and recall.

    python benchmarks/bench_build_scale.py --docs 1000000 --nnz 120

Generates a seeded SPLADE-like matrix (Zipf-distributed terms over a 30,522-term
vocabulary, log-normal weights, Poisson row lengths of mean ``--nnz``), in chunks so
that generation itself stays small, then times ``SeismicIndex.build`` with default
parameters. Reports the process' peak resident memory (``ru_maxrss``) before and after
the build, the build's CPU time over its wall time (2.0 = both cores busy throughout),
the saved index size, and Recall@10 of the default search against ``exact_search`` on
``--queries`` queries. Writes ``benchmarks/results/build_scale_<docs>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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

RESULTS = Path(__file__).resolve().parent / "results"
DIM = 30522


def zipf_rows(n_rows: int, mean_nnz: float, seed: int, chunk: int = 100_000) -> sp.csr_array:
    """Vectorised, chunked SPLADE-like rows (duplicate draws of a term merge into one)."""
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(np.arange(1, DIM + 1, dtype=np.float64) ** -1.1)
    cdf /= cdf[-1]
    perm = rng.permutation(DIM).astype(np.int32)
    parts = []
    for start in range(0, n_rows, chunk):
        rows = min(chunk, n_rows - start)
        lengths = np.maximum(1, rng.poisson(mean_nnz, rows))
        # Draw more than needed (head terms repeat), keep each row's first ``length``
        # distinct terms (term ids are a random permutation of ranks: no rank bias).
        row_of = np.repeat(np.arange(rows, dtype=np.int64), 3 * lengths)
        terms = perm[np.minimum(np.searchsorted(cdf, rng.random(row_of.size)), DIM - 1)]
        keys = np.unique(row_of * DIM + terms)
        r, c = np.divmod(keys, DIM)
        pos = np.arange(keys.size) - np.searchsorted(r, r)
        keep = pos < lengths[r]
        keys, r, c = keys[keep], r[keep], c[keep]
        data = rng.lognormal(mean=-0.3, sigma=0.7, size=keys.size).astype(np.float32)
        parts.append(sp.csr_array((data, (r, c.astype(np.int32))), shape=(rows, DIM)))
    return sp.csr_array(sp.vstack(parts, format="csr"))


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--nnz", type=float, default=120.0)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--query-nnz", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))

    t0 = time.perf_counter()
    docs = zipf_rows(args.docs, args.nnz, seed=1)
    queries = zipf_rows(args.queries, args.query_nnz, seed=2)
    gen_s = time.perf_counter() - t0
    input_mb = (docs.data.nbytes + docs.indices.nbytes + docs.indptr.nbytes) / 2**20
    # Warm the JIT on a slice so compile time is not counted as build time.
    SeismicIndex.build(docs[:2000]).search(queries[:2])
    rss_before = max_rss_mb()

    cpu0, t0 = time.process_time(), time.perf_counter()
    index = SeismicIndex.build(docs)
    build_s = time.perf_counter() - t0
    build_cpu_s = time.process_time() - cpu0
    rss_after = max_rss_mb()

    tmp = Path(tempfile.mkdtemp(prefix="build-scale-"))
    try:
        index.save(tmp / "ix")
        index_bytes = sum(p.stat().st_size for p in (tmp / "ix").rglob("*") if p.is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    truth, _ = exact_search(docs, queries, k=10)
    found, _ = index.search(queries, k=10)
    rec = recall_vs_exact(found, truth)

    result = {
        "docs": docs.shape[0],
        "nnz_per_doc": docs.nnz / docs.shape[0],
        "input_csr_mb": input_mb,
        "generate_seconds": gen_s,
        "build_seconds": build_s,
        "build_cpu_seconds": build_cpu_s,
        "cores_busy": build_cpu_s / build_s,
        "peak_rss_mb_before_build": rss_before,
        "peak_rss_mb_after_build": rss_after,
        "index_bytes": index_bytes,
        "recall@10_default": rec,
        "queries": queries.shape[0],
        "threads": numba.get_num_threads(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "mem_total_gb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        },
        "command": "python " + " ".join(sys.argv),
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"build_scale_{args.docs}.json"
    path.write_text(json.dumps(result, indent=1))
    print(
        f"{'docs x nnz/doc':24s} {result['docs']:,} x {result['nnz_per_doc']:.1f} "
        f"(input CSR {input_mb:,.0f} MB)"
    )
    print(
        f"{'build':24s} {build_s:.1f} s wall, {build_cpu_s:.1f} s CPU "
        f"({result['cores_busy']:.2f} cores busy)"
    )
    print(f"{'peak RSS':24s} {rss_before:,.0f} MB before build, {rss_after:,.0f} MB after")
    print(f"{'index size':24s} {index_bytes / 2**20:,.0f} MB")
    print(f"{'Recall@10 (defaults)':24s} {rec:.4f} on {queries.shape[0]} queries")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
