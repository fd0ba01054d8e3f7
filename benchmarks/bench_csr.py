"""CSR vs its dense base: nDCG@10 per collection at several k, exact search over the codes.

    python benchmarks/bench_csr.py [--model encoders/models/csr-minilm] [--data-dir ../shared/data]
        [--ks 16 32 64 128] [--device auto] [--embeddings-cache FILE] [--seismic]

Baselines in the same process: the dense all-MiniLM-L6-v2 embeddings (cosine, exact) and
BM25 (``encoders.bm25``, the eval's analyser; exact; ``--no-bm25`` skips it). CSR:
the same embeddings through the TopK autoencoder at each ``k``, exact inner-product search
(``index.exact_search``, or scipy with ``--search scipy``). ``--seismic`` also builds a
``SeismicIndex`` over the k=64 codes and reports its nDCG@10 and recall@10 against exact.
Judged queries only; test splits only. Writes JSON to benchmarks/results/.
Embedding the 12k test documents takes seconds on a GPU but ~20 minutes on 2 CPU cores:
``--embeddings-cache FILE`` saves them once (fp16) and reuses them.
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
from encoders.training.evaluate import (  # noqa: E402
    embeddings_for,
    evaluate_collection,
    format_table,
    summarize,
)
from encoders.training.retrieval import load_beir, ndcg_at_10  # noqa: E402
from index import exact_search  # noqa: E402


def seismic_row(docs, queries, exact_rows, coll) -> dict[str, float]:
    """Build a SeismicIndex over the codes and search it; nDCG@10 and recall@10 vs exact."""
    from index import SeismicIndex, recall_vs_exact

    t = time.perf_counter()
    idx = SeismicIndex.build(docs)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    rows, scores = idx.search(queries, k=100)
    search_us = 1e6 * (time.perf_counter() - t) / max(1, queries.shape[0])
    return {
        "ndcg10": ndcg_at_10(rows, scores, coll.query_ids, coll.doc_ids, coll.qrels),
        "recall_vs_exact10": recall_vs_exact(rows[:, :10], exact_rows[:, :10]),
        "build_s": build_s,
        "search_us_per_query": search_us,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_csr_eval_args(p)
    p.add_argument("--limit-docs", type=int, default=None, help="first N documents (smoke runs)")
    p.add_argument("--search", choices=("index", "scipy"), default="index")
    p.add_argument("--seismic", action="store_true", help="also search a SeismicIndex at k=64")
    p.add_argument("--no-bm25", action="store_true", help="skip the BM25 column")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "csr_bench.json")
    args = p.parse_args(argv)

    encoder = load_csr(args.model, device=args.device, normalize=args.normalize)
    ks = [k for k in args.ks if k <= encoder.max_k]
    cache = load_embedding_cache(args.embeddings_cache)
    colls = {name: load_beir(args.data_dir / name, "test") for name in args.collections}
    for coll in colls.values():
        if args.limit_docs:
            coll.doc_ids = coll.doc_ids[: args.limit_docs]
            coll.doc_texts = coll.doc_texts[: args.limit_docs]
        embeddings_for(encoder, coll, cache)
    if args.embeddings_cache and not args.embeddings_cache.is_file():
        np.savez(args.embeddings_cache, **{k: v.astype(np.float16) for k, v in cache.items()})

    def seismic(docs, queries, exact_rows, coll) -> dict:
        return {"seismic_k64": seismic_row(docs, queries, exact_rows, coll)}

    options = {"search": exact_search if args.search == "index" else None, "bm25": not args.no_bm25}
    options["extra"] = seismic if args.seismic else None
    results = {
        name: evaluate_collection(encoder, coll, ks, cache, **options)
        for name, coll in colls.items()
    }
    summary = summarize(results, ks)
    print(format_table({"collections": results, "summary": summary, "ks": ks}))
    cmd = sys.argv[1:] if argv is None else argv
    write_report(args.out, "bench_csr.py", cmd, {
        "model": str(args.model),
        "normalize": encoder.settings.normalize,
        "device": str(encoder.device),
        "search": args.search,
        "collections": results,
        "summary": summary,
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
