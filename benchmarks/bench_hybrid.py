"""Hybrid retrieval on the shared test collections: each sparse field, their fusion and the
fusion re-scored by the dense model, against the stemmed BM25 baseline run in the same process.

The fusion of each pair of fields is selected once, on SciFact's *train* queries (``--select-on``),
and then used unchanged on every test collection, SciFact's test queries included; no test
judgment takes part in the choice. Writes ``benchmarks/results/hybrid_eval.json``.

    python benchmarks/bench_hybrid.py --pairs splade-tiny+bm25 csr-minilm+bm25 --rerank dense
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

from app.jobs.evaluation.hybrid import HybridConfig, HybridEvaluation  # noqa: E402
from app.jobs.evaluation.report import format_table  # noqa: E402
from app.services.fusion import FusionSpec  # noqa: E402
from benchmarks.machine import MODEL_PACKAGES, machine_info  # noqa: E402

SHARED = Path(os.environ.get("LSR_SHARED_DIR", ROOT.parents[1] / "shared")) / "data"
OUT = ROOT / "results" / "hybrid_eval.json"
DATASETS = ("scifact", "cranfield", "cisi", "cacm", "med")
BASELINE = "bm25 (baseline)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=SHARED)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--pairs", nargs="+", default=["splade-tiny+bm25", "csr-minilm+bm25"],
                        help="fields joined by +, one hybrid each")  # fmt: skip
    parser.add_argument("--select-on", default="scifact:train", metavar="DATASET:SPLIT",
                        help="a dataset under --data-root, or a folder; a qrels split")  # fmt: skip
    parser.add_argument("--rerank", choices=("dense",), default=None)
    parser.add_argument("--compare", nargs="*", default=["rrf"], metavar="METHOD",
                        help="equal-weight fusions scored beside the selected one")  # fmt: skip
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache/lsr/encoded")
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    select_name, _, select_split = args.select_on.rpartition(":")
    select_dir = args.data_root / select_name
    select_on = (str(select_dir if select_dir.is_dir() else select_name), select_split)
    encoders: dict = {}  # loaded models, reused across datasets and pairs
    report: dict = {"datasets": {}, "selection": {}, "command": "python " + " ".join(
        ["benchmarks/bench_hybrid.py", "--pairs", *args.pairs, "--select-on", args.select_on,
         "--compare", *args.compare, "--datasets", *args.datasets]
        + (["--rerank", args.rerank] if args.rerank else []))}  # fmt: skip
    started = time.perf_counter()
    for pair in args.pairs:
        fields = tuple(pair.split("+"))
        picker = HybridEvaluation(
            HybridConfig(dataset=str(args.data_root / args.datasets[0]), encoders=fields,
                         select_on=select_on, rerank=args.rerank, cache_dir=args.cache_dir,
                         progress=False, max_queries=args.max_queries),
            encoders,
        )  # fmt: skip
        spec = picker.select()
        report["selection"][pair] = {**picker.meta["selected_on"], "grid": picker.selection}
        chosen = spec.describe() + (
            f", dense re-rank share {picker.rerank_weight:g}" if args.rerank else ""
        )
        print(f"{pair}: selected {chosen} on {args.select_on}", flush=True)
        for name in args.datasets:
            config = HybridConfig(
                dataset=str(args.data_root / name), encoders=fields, fusion=spec,
                compare=tuple(FusionSpec(method) for method in args.compare),
                rerank=args.rerank, rerank_weight=picker.rerank_weight,
                cache_dir=args.cache_dir, progress=False,
                max_queries=args.max_queries,
            )  # fmt: skip
            ev = HybridEvaluation(config, encoders)
            result = ev.run()
            entry = report["datasets"].setdefault(name, {"meta": ev.meta, "systems": {}})
            for system, values in result.items():
                label = system if system in (BASELINE, *fields) else f"{pair}: {system}"
                entry["systems"][label] = values
            write(report, args.out, started)  # what is done survives a cut-short run
            print(f"  {name}: " + ", ".join(f"{s} {v['nDCG@10']:.4f}" for s, v in result.items()),
                  flush=True)  # fmt: skip
    print(format_table(*write(report, args.out, started)))
    print(f"json: {args.out}")


def write(report: dict, out: Path, started: float) -> tuple[list[list[str]], list[str]]:
    report["seconds"] = round(time.perf_counter() - started, 1)
    report.setdefault("machine", machine_info(MODEL_PACKAGES))
    table = summarise(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return table


def summarise(report: dict) -> tuple[list[list[str]], list[str]]:
    """nDCG@10 per system and dataset, the mean, and on how many datasets it beats BM25."""
    names = list(report["datasets"])
    systems: list[str] = []
    for entry in report["datasets"].values():
        systems += [s for s in entry["systems"] if s not in systems]
    rows, summary = [], {}
    for system in systems:
        values = [report["datasets"][n]["systems"].get(system, {}).get("nDCG@10") for n in names]
        base = [report["datasets"][n]["systems"][BASELINE]["nDCG@10"] for n in names]
        mean = sum(values) / len(values) if None not in values else None
        wins = sum(v is not None and v > b for v, b in zip(values, base, strict=True))
        summary[system] = {"nDCG@10": dict(zip(names, values, strict=True)), "mean": mean,
                           "beats_bm25_on": wins}  # fmt: skip
        cells = [f"{v:.4f}" if v is not None else "-" for v in values]
        rows.append([system, *cells, f"{mean:.4f}" if mean is not None else "-", f"{wins}"])
    report["summary"] = summary
    return rows, ["system (nDCG@10)", *names, "mean", "> bm25"]


if __name__ == "__main__":
    main()
