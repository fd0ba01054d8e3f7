"""Evaluation of encoders side by side on the shared test collections (BEIR layout).

For each dataset and encoder: exact search, the Seismic index, and the BM25 baseline (run in
the same process, on the same judged queries), scored with ir_measures. Writes one folder per
(dataset, encoder) with results.json, report.md and the recall-vs-latency plot, plus a combined
``summary.json`` and ``README.md`` table, under ``benchmarks/results/eval/``.

    python benchmarks/bench_eval.py --encoders splade-tiny csr-minilm \
        --datasets scifact cranfield cisi cacm med
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))  # run as a script: the repo's packages first

from app.jobs.evaluation.run import EvalConfig, run_eval  # noqa: E402

SHARED = Path(os.environ.get("LSR_SHARED_DIR", ROOT.parents[1] / "shared")) / "data"
OUT = ROOT / "results" / "eval"
DATASETS = ("scifact", "cranfield", "cisi", "cacm", "med")
METRICS = ("nDCG@10", "MRR@10", "R@100", "R@1000")


def summary_rows(summary: dict) -> list[list[str]]:
    rows = []
    for dataset, systems in summary.items():
        for system, result in sorted(systems.items(), key=lambda kv: (kv[0] == "bm25", kv[0])):
            cells = [f"{result[m]:.4f}" for m in METRICS]
            recall = result.get("recall_vs_exact@10")
            cells.append(f"{recall:.4f}" if recall is not None else "-")
            for key in ("latency_mean_ms", "batch_ms_per_query"):
                value = result.get(key)
                cells.append(f"{value:.3f}" if value is not None else "-")
            rows.append([dataset, system, *cells])
    return rows


def write_summary(summary: dict, meta: dict) -> None:
    header = [
        "dataset",
        "system",
        *METRICS,
        "recall_vs_exact@10",
        "ms/query (1 per call)",
        "ms/query (batch)",
    ]
    rows = summary_rows(summary)
    lines = [
        "# Evaluation on the shared test collections",
        "",
        "Produced by `python benchmarks/bench_eval.py --encoders ENCODER` (once per encoder; "
        "seconds per run in summary.json) on a 2-core CPU "
        "machine shared with other jobs (latencies are indicative). Metrics: ir_measures on "
        "judged queries, k = 1000. `exact` = exact inner-product search over the encoder's "
        "vectors, `index` = the Seismic index at default build and query parameters, `bm25` = "
        "bm25s (Lucene BM25, k1 0.9, b 0.4, English stop words + Snowball stemming, title + text). "
        "Latency: k = 10, one query per call (exact_search re-transposes the documents on every "
        "call); batch: the k = 1000 run over all queries divided by their number.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += [
        "",
        "None of these systems saw these collections: `csr-minilm` is the general model, trained "
        "on no text of them (its normalised codes, documents at k = 64, queries at 1,024 latents; "
        "see `encoders/models/csr-minilm/README.md`); `splade-tiny` and BM25 never saw them "
        "either.",
        "",
        "Per-run reports: `<dataset>-<encoder>/report.md`.",
        "",
    ]
    (OUT / "README.md").write_text("\n".join(lines))
    (OUT / "summary.json").write_text(json.dumps({"meta": meta, "results": summary}, indent=2))
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--encoders", nargs="+", default=["splade-tiny"])
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache/lsr/encoded")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    previous = OUT / "summary.json"
    stored = json.loads(previous.read_text()) if previous.is_file() else {}
    summary: dict = stored.get("results", {})
    timings: dict = stored.get("meta", {}).get("seconds", {})
    for dataset in args.datasets:
        folder = SHARED / dataset
        if not folder.is_dir():
            raise SystemExit(f"{folder} not found (set LSR_SHARED_DIR)")
        for encoder in args.encoders:
            start = time.perf_counter()
            config = EvalConfig(
                dataset=str(folder), encoder=encoder, results_dir=OUT / f"{dataset}-{encoder}",
                write_runs=False, cache_dir=args.cache_dir, progress=False,
            )  # fmt: skip
            evaluation = run_eval(config)
            timings[f"{dataset}-{encoder}"] = round(time.perf_counter() - start, 1)
            systems = summary.setdefault(dataset, {})
            systems[f"{encoder} exact"] = evaluation.result["exact"]
            systems[f"{encoder} index"] = evaluation.result["index"]
            systems["bm25"] = evaluation.result["bm25"]
            write_summary(summary, {"seconds": timings})  # after each run: partial results stay


if __name__ == "__main__":
    main()
