"""How wide a CSR model's query codes should be: nDCG@10 with documents at their served
``k`` and queries at each width, on SciFact *train* queries (the selection set) and on the
test queries of every shared collection (reported, not selected on).

    python benchmarks/bench_csr_query_k.py [--model encoders/models/csr-minilm]
        [--widths 64 128 256 512 1024 2048 8192] [--embeddings-cache FILE] [--search-timing]

A query's code may be wider than a document's (``CSRSettings.query_k`` up to ``latent_dim``):
the index keeps documents at ``default_k``, and a wider query weighs every latent a document
uses. The rule, fixed before the test columns are read: the narrowest width whose SciFact
train nDCG@10 is within ``--tolerance`` (0.002) of the best width's, since every extra query
latent is one more list a search may walk. ``--search-timing`` also times exact search
(``index.exact_search``, one thread) over all the test documents' codes with the SciFact
train queries at each width. ``--doc-k`` codes the documents at another ``k`` (wider than the
trained 128 too: 8,192 keeps every positive latent), which measures what truncating documents
costs. Exact search over the codes; dense cosine in the same process. Writes JSON to
benchmarks/results/csr_query_k.json (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.csr_args import add_csr_eval_args, load_embedding_cache  # noqa: E402
from benchmarks.machine import write_report  # noqa: E402
from encoders.csr import load_csr  # noqa: E402
from encoders.training.evaluate import embeddings_for  # noqa: E402
from encoders.training.retrieval import (  # noqa: E402
    load_beir,
    ndcg_at_10,
    query_key,
    top_dense,
    top_sparse,
)

DEV = "scifact-train"


def pick_width(dev: dict[int, float], tolerance: float) -> int:
    """The narrowest width whose dev nDCG@10 is within ``tolerance`` of the best."""
    best = max(dev.values())
    return min(w for w, v in dev.items() if v >= best - tolerance)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_csr_eval_args(p)
    p.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048, 8192])
    p.add_argument(
        "--doc-k",
        type=int,
        default=None,
        help="documents' k (default: the model's served k; wider than the trained k allowed, "
        "to measure what truncating documents costs)",
    )
    p.add_argument("--tolerance", type=float, default=0.002)
    p.add_argument("--search-timing", action="store_true")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "csr_query_k.json")
    args = p.parse_args(argv)

    encoder = load_csr(args.model, device=args.device, normalize=args.normalize)
    widths = sorted({min(w, encoder.dim) for w in args.widths})
    doc_k = min(args.doc_k or encoder.default_k, encoder.dim)
    cache = load_embedding_cache(args.embeddings_cache)
    n_cached = len(cache)
    sets = {DEV: load_beir(args.data_dir / "scifact", "train")}
    sets.update({name: load_beir(args.data_dir / name, "test") for name in args.collections})
    rows: dict[str, dict] = {}
    doc_codes = []
    for label, coll in sets.items():
        d, q = embeddings_for(encoder, coll, cache)  # queries keyed by split
        dense = ndcg_at_10(*top_dense(q, d), coll.query_ids, coll.doc_ids, coll.qrels)
        docs = encoder.sparsify(d, doc_k, wide=doc_k > encoder.max_k)
        if label != DEV:
            doc_codes.append(docs)
        row = {"dense": dense, "queries": len(coll.query_ids), "docs": len(coll.doc_ids)}
        for w in widths:
            ranked = top_sparse(encoder.sparsify(q, w, wide=True), docs)
            score = ndcg_at_10(*ranked, coll.query_ids, coll.doc_ids, coll.qrels)
            row[f"q{w}"], row[f"ratio_q{w}"] = score, score / dense
        rows[label] = row
        ratios = " ".join(f"q{w}:{row[f'ratio_q{w}']:.3f}" for w in widths)
        print(label, f"dense {dense:.4f}", ratios, flush=True)
    if args.embeddings_cache and len(cache) > n_cached:
        np.savez(args.embeddings_cache, **{k: v.astype(np.float16) for k, v in cache.items()})
    dev = {w: rows[DEV][f"q{w}"] for w in widths}
    chosen = pick_width(dev, args.tolerance)
    tests = [n for n in rows if n != DEV]
    summary = {}
    for w in widths:
        ratios = [rows[n][f"ratio_q{w}"] for n in tests]
        summary[w] = {"dev": dev[w], "mean_ratio": float(np.mean(ratios)),
                      "min_ratio": float(np.min(ratios))}  # fmt: skip
    if args.search_timing:
        import numba
        import scipy.sparse as sp

        from index import exact_search

        docs = sp.vstack(doc_codes).tocsr()
        queries = cache[query_key("scifact", "train")].astype(np.float32)
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        for w in widths:
            codes = encoder.sparsify(queries, w, wide=True)
            exact_search(docs, codes[:10], k=10)  # compiled and warm
            t = time.perf_counter()
            exact_search(docs, codes, k=10)
            us = 1e6 * (time.perf_counter() - t) / codes.shape[0]
            summary[w]["query_nnz"] = float(codes.nnz / codes.shape[0])
            summary[w]["exact_us_per_query"] = us
        numba.set_num_threads(threads)
    print(f"\ndocuments at k = {doc_k}; SciFact train nDCG@10 (selection) and test CSR / dense")
    print(f"{'query k':>8} {'dev':>7} {'mean':>6} {'min':>6} {'us/q':>8}")
    for w in widths:
        s = summary[w]
        us = f"{s['exact_us_per_query']:8.0f}" if "exact_us_per_query" in s else f"{'':8}"
        mark = "  <- chosen" if w == chosen else ""
        print(f"{w:8d} {s['dev']:7.4f} {s['mean_ratio']:6.3f} {s['min_ratio']:6.3f} {us}{mark}")
    cmd = sys.argv[1:] if argv is None else argv
    write_report(args.out, "bench_csr_query_k.py", cmd, {
        "model": str(args.model),
        "normalize": encoder.settings.normalize,
        "doc_k": doc_k,
        "rule": f"narrowest width within {args.tolerance} of the best SciFact train nDCG@10",
        "chosen_query_k": chosen,
        "collections": rows,
        "summary": {str(w): v for w, v in summary.items()},
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
