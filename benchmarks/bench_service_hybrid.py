"""The service's hybrid search end to end: nDCG@10 and ms per search of a collection with
splade-tiny + BM25 fields (fused linear 0.3 / 0.7, as the default collection) and a
``minilm-dense`` re-rank field, searched over HTTP (in process) with and without
``"rerank"``, on a BEIR folder's judged test queries.

What it checks: that the service's answers score what ``lsr eval``'s hybrid run scores on the
same collection (``benchmarks/results/hybrid_eval_rerank.json``: the same fusion, the same
re-rank arithmetic, ``app.services.fusion``), and what the re-rank costs per search here
(one MiniLM call on the query, the candidates' stored embeddings). Prints a table and writes
``benchmarks/results/service_hybrid.json``.

    python benchmarks/bench_service_hybrid.py --datasets cranfield [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import write_report  # noqa: E402

FIELDS = {
    "splade": {"encoder": "splade-tiny"},
    "bm25": {"encoder": "bm25"},
    "dense": {"encoder": "minilm-dense"},
}
FUSION = {"method": "linear", "weights": {"splade": 0.3, "bm25": 0.7}}
SYSTEMS = {  # name -> the search body's extra keys
    "fused linear(0.3,0.7)": {"rerank": False},
    "the same + dense@100 (share 0.5)": {"rerank": {"depth": 100}},
}


def run(folder: Path, batch: int) -> dict:
    from fastapi.testclient import TestClient

    from app.jobs.evaluation.metrics import evaluate_run
    from app.main import create_app
    from app.settings import Settings
    from encoders.training.retrieval import load_beir

    coll = load_beir(folder, "test")
    qrels = {q: {d: int(r) for d, r in rel.items()} for q, rel in coll.qrels.items()}
    out: dict = {"documents": len(coll.doc_ids), "queries": len(coll.query_ids)}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), warmup=False)
        with TestClient(create_app(settings)) as c:
            body = {"name": "h", "fields": FIELDS, "fusion": FUSION}
            r = c.post("/v1/collections", json=body)
            r.raise_for_status()
            start = time.perf_counter()
            docs = [{"id": i, "text": t} for i, t in zip(coll.doc_ids, coll.doc_texts, strict=True)]
            for at in range(0, len(docs), batch):
                c.post("/v1/collections/h/documents", json={"documents": docs[at : at + batch]})
            out["write_s"] = round(time.perf_counter() - start, 1)
            c.post("/v1/collections/h/seal").raise_for_status()
            for name, extra in SYSTEMS.items():
                run_: dict[str, dict[str, float]] = {}
                took = []
                for qid, text in zip(coll.query_ids, coll.query_texts, strict=True):
                    start = time.perf_counter()
                    r = c.post("/v1/collections/h/search", json={"query": text, "k": 10, **extra})
                    took.append((time.perf_counter() - start) * 1000)
                    r.raise_for_status()
                    run_[qid] = {h["id"]: float(h["score"]) for h in r.json()["hits"]}
                scores = evaluate_run(qrels, run_)
                out[name] = {
                    "nDCG@10": round(scores["nDCG@10"], 4),
                    "ms_p50": round(float(np.percentile(took, 50)), 2),
                    "ms_p99": round(float(np.percentile(took, 99)), 2),
                }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=["cranfield"])
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--batch", type=int, default=64, help="documents per write request")
    p.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "service_hybrid.json"
    )
    args = p.parse_args(argv)
    results = {name: run(args.data_dir / name, args.batch) for name in args.datasets}
    print(f"{'dataset':<10} {'system':<34} {'nDCG@10':>8} {'ms p50':>8} {'ms p99':>8}")
    for name, row in results.items():
        for system in SYSTEMS:
            cell = row[system]
            print(
                f"{name:<10} {system:<34} {cell['nDCG@10']:>8.4f} {cell['ms_p50']:>8.2f}"
                f" {cell['ms_p99']:>8.2f}"
            )
    argv = sys.argv[1:] if argv is None else argv
    write_report(args.out, "bench_service_hybrid.py", argv, {"datasets": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
