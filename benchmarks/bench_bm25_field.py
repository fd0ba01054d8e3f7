"""The service's live BM25 field on the Seismic index: Recall@10 against exact search and
ms per query, for the two ways of splitting BM25 between document and query.

- ``idf in documents``: ``encoders.bm25`` (what ``lsr eval`` indexes): document weights
  ``idf * sat(tf)``, queries term counts;
- ``idf in queries``: the service's live field: document weights ``sat(tf)`` (no idf, so they
  never go stale), queries ``count * idf`` from the live statistics; with the default block
  summaries (``summary_energy`` 0.4) and with whole summaries (1.0).

Same scores either way (the inner product is BM25); what differs is how well Seismic's block
summaries bound them. Prints a table and writes ``benchmarks/results/bm25_field.json``.

    python benchmarks/bench_bm25_field.py --datasets scifact cacm
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import write_report  # noqa: E402
from encoders.bm25 import BM25Encoder  # noqa: E402
from index import SeismicIndex, exact_search  # noqa: E402


def _recall(docs: sp.csr_array, queries: sp.csr_array, **params: object) -> dict:
    index = SeismicIndex.build(docs, **params)
    ids, _ = index.search(queries, k=10)
    start = time.perf_counter()
    index.search(queries, k=10)
    ms = (time.perf_counter() - start) * 1000 / queries.shape[0]
    truth, _ = exact_search(docs, queries, k=10)
    hits = [
        len(set(a[a >= 0]) & set(b[b >= 0])) / max(int((b >= 0).sum()), 1)
        for a, b in zip(ids, truth, strict=True)
    ]
    return {"recall_at_10": round(float(np.mean(hits)), 4), "ms_per_query": round(ms, 4)}


def run(folder: Path, n_queries: int) -> dict:
    with open(folder / "corpus.jsonl") as fh:
        docs = [json.loads(line) for line in fh]
    with open(folder / "queries.jsonl") as fh:
        queries = [json.loads(line)["text"] for line in fh][:n_queries]
    texts = [f"{d.get('title', '')} {d['text']}".strip() for d in docs]
    enc = BM25Encoder().fit(texts)
    in_docs = sp.csr_array(enc.encode_documents(texts), dtype=np.float32)
    counts = sp.csr_array(enc.encode_queries(queries), dtype=np.float32)
    idf = enc.stats.idf().astype(np.float32)
    saturated = sp.csr_array(
        (in_docs.data / idf[in_docs.indices], in_docs.indices, in_docs.indptr), in_docs.shape
    )
    weighted = sp.csr_array(
        (counts.data * idf[counts.indices], counts.indices, counts.indptr), counts.shape
    )
    return {
        "documents": len(texts),
        "queries": len(queries),
        "idf in documents (encoders.bm25)": _recall(in_docs, counts),
        "idf in queries (service), energy 0.4": _recall(saturated, weighted),
        "idf in queries (service), energy 1.0": _recall(saturated, weighted, summary_energy=1.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--datasets", nargs="+", default=["scifact", "cacm"])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/bm25_field.json")
    args = parser.parse_args()
    results = {name: run(args.data / name, args.queries) for name in args.datasets}
    print(f"{'dataset':<10} {'variant':<40} {'R@10':>7} {'ms/query':>9}")
    for name, result in results.items():
        for variant, row in result.items():
            if isinstance(row, dict):
                line = f"{name:<10} {variant:<40} {row['recall_at_10']:>7.4f}"
                print(f"{line} {row['ms_per_query']:>9.4f}")
    write_report(args.out, "bench_bm25_field.py", sys.argv[1:], {"results": results})


if __name__ == "__main__":
    main()
