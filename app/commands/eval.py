"""``lsr eval``: score an encoder with exact search, the Seismic index and BM25 on one dataset."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

from app.jobs.errors import CorpusError, DatasetUnavailableError

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate an encoder + index on BEIR / MS MARCO",
        description="nDCG@10, MRR@10, R@100, R@1000 (ir_measures) of exact search, the Seismic "
        "index and BM25 on the judged queries of a dataset; writes TREC runs, JSON and a report.",
    )
    p.add_argument("--dataset", required=True,
                   help="a BEIR folder, a BEIR name (scifact, beir/nfcorpus; downloaded) or an "
                   "ir_datasets id (msmarco-passage/dev/small)")  # fmt: skip
    p.add_argument(
        "--encoder",
        action="append",
        default=None,
        help="encoder name, directory or HF id (default splade-tiny); give it twice "
        "or more for a hybrid: each field, their fusion and optional re-rank",
    )
    p.add_argument(
        "--fusion",
        choices=("rrf", "linear"),
        default=None,
        help="hybrid: reciprocal-rank fusion (k=60) or min-max linear (default: the fusion "
        "selected on SciFact train for a shipped pair, else rrf)",
    )
    p.add_argument(
        "--fusion-weights",
        default=None,
        metavar="W1,W2,...",
        help="hybrid: one weight per --encoder, in order (default equal)",
    )
    p.add_argument(
        "--select-on",
        default=None,
        metavar="DATASET:SPLIT",
        help="hybrid: choose fusion method and weights on these judged queries "
        "(e.g. /data/scifact:train), never on the split reported",
    )
    p.add_argument(
        "--rerank",
        choices=("dense",),
        default=None,
        help="hybrid: re-score the fused candidates with the dense all-MiniLM-L6-v2",
    )
    p.add_argument("--rerank-depth", type=int, default=100, help="fused candidates re-scored")
    p.add_argument(
        "--rerank-weight",
        type=float,
        default=None,
        help="hybrid: the dense cosine's share of the re-rank score, 0-1 (default: selected "
        "with --select-on, else the share selected once on SciFact train for the pair, "
        "SELECTED_RERANK_WEIGHTS in app/services/fusion.py; 0.5 for other fields)",
    )
    p.add_argument("--split", default="test", help="qrels split of a BEIR folder (default test)")
    p.add_argument("--k", type=int, default=1000, help="hits per query for the metrics")
    p.add_argument("--index-params", nargs="*", default=[], metavar="KEY=VALUE",
                   help="SeismicIndex.build parameters, e.g. n_postings=3500")  # fmt: skip
    p.add_argument("--query-params", nargs="*", default=[], metavar="KEY=VALUE",
                   help="search parameters, e.g. query_cut=10 heap_factor=0.9")  # fmt: skip
    p.add_argument(
        "--sweep",
        default=None,
        metavar="CUT:FACTOR,...",
        help="recall-vs-latency points, default 3:0.7,5:0.8,8:0.9,10:0.9,15:1,25:1",
    )
    p.add_argument("--output-json", type=Path, default=None, help="write the metrics JSON here")
    p.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help="runs, results.json, report.md, plot (default lsr-eval/DATASET-ENCODER)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="texts per encoder batch (default: the encoder's, larger on a GPU)",
    )
    p.add_argument("--device", default=None, help="encoder device (cuda, cpu; default: auto)")
    p.add_argument("--latency-queries", type=int, default=1000,
                   help="queries timed one at a time (the first N)")  # fmt: skip
    p.add_argument("--max-queries", type=int, default=None, help="only the first N judged queries")
    p.add_argument("--no-bm25", action="store_true", help="skip the BM25 baseline")
    p.add_argument("--no-index", action="store_true", help="skip the approximate index")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=Path.home() / ".cache" / "lsr" / "encoded",
        help="encoded documents are cached here and reused by the next run with "
        "the same corpus and model files (default ~/.cache/lsr/encoded)",
    )
    p.add_argument("--no-cache", action="store_true", help="encode the documents afresh")
    p.add_argument("--no-runs", action="store_true", help="do not write TREC run files")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def default_results_dir(dataset: str, encoder: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{Path(dataset).name or dataset}-{Path(encoder).name}")
    return Path("lsr-eval") / name


def parse_select_on(text: str) -> tuple[str, str]:
    """``"DIR:train"`` -> ("DIR", "train"); the split after the last colon."""
    dataset, sep, split = text.rpartition(":")
    if not sep or not dataset or not split:
        raise ValueError(f"--select-on takes DATASET:SPLIT, got {text!r}")
    return dataset, split


def run(args: argparse.Namespace) -> int:
    encoders = args.encoder or ["splade-tiny"]
    if len(encoders) > 1:
        return run_hybrid(args, encoders)
    args.encoder = encoders[0]
    hybrid_only = (args.fusion, args.fusion_weights, args.select_on, args.rerank)
    if any(hybrid_only) or args.rerank_weight is not None:
        print("lsr eval: error: --fusion, --fusion-weights, --select-on, --rerank and "
              "--rerank-weight need two or more --encoder fields", file=sys.stderr)  # fmt: skip
        return 2
    from app.jobs.evaluation.report import terminal_table
    from app.jobs.evaluation.run import DEFAULT_SWEEP, EvalConfig, run_eval
    from app.jobs.params import parse_params, parse_sweep

    try:
        config = EvalConfig(
            dataset=args.dataset, encoder=args.encoder, split=args.split, k=args.k,
            index_params=parse_params(args.index_params),
            query_params=parse_params(args.query_params),
            sweep=parse_sweep(args.sweep) if args.sweep else DEFAULT_SWEEP,
            results_dir=args.results_dir or default_results_dir(args.dataset, args.encoder),
            output_json=args.output_json, batch_size=args.batch_size, device=args.device,
            bm25=not args.no_bm25, index=not args.no_index,
            latency_queries=args.latency_queries, max_queries=args.max_queries,
            progress=not args.no_progress, write_runs=not args.no_runs,
            cache_dir=None if args.no_cache else args.cache_dir,
        )  # fmt: skip
        evaluation = run_eval(config)
    except (CorpusError, DatasetUnavailableError, ValueError) as exc:
        print(f"lsr eval: error: {exc}", file=sys.stderr)
        return 2
    meta = evaluation.meta
    print(f"\n{meta['dataset']} ({meta['documents']} documents, {meta['judged_queries']} judged "
          f"queries), encoder {meta['encoder']}:")  # fmt: skip
    print(terminal_table(evaluation.result))
    print(f"\nstages (s): {evaluation.stages}")
    print(f"report: {config.results_dir / 'report.md'}")
    if config.output_json:
        print(f"json: {config.output_json}")
    return 0


def run_hybrid(args: argparse.Namespace, encoders: list[str]) -> int:
    """Each field, the fusion (given or selected) and the optional dense re-rank."""
    from app.jobs.evaluation.hybrid import (
        HYBRID_COLUMNS,
        HybridConfig,
        hybrid_rows,
        run_hybrid_eval,
    )
    from app.jobs.evaluation.report import format_table
    from app.jobs.params import parse_params
    from app.services.fusion import FusionSpec

    try:
        fusion = None
        if args.fusion or args.fusion_weights:
            weights = None
            if args.fusion_weights:
                weights = tuple(float(w) for w in args.fusion_weights.split(","))
            fusion = FusionSpec(args.fusion or "rrf", weights)
        config = HybridConfig(
            dataset=args.dataset, encoders=tuple(encoders), split=args.split, fusion=fusion,
            select_on=parse_select_on(args.select_on) if args.select_on else None,
            rerank=args.rerank, rerank_depth=args.rerank_depth,
            rerank_weight=args.rerank_weight, k=args.k,
            use_index=not args.no_index, index_params=parse_params(args.index_params),
            query_params=parse_params(args.query_params), bm25=not args.no_bm25,
            cache_dir=None if args.no_cache else args.cache_dir, device=args.device,
            batch_size=args.batch_size, max_queries=args.max_queries,
            progress=not args.no_progress,
        )  # fmt: skip
        evaluation = run_hybrid_eval(config)
    except (CorpusError, DatasetUnavailableError, ValueError) as exc:
        print(f"lsr eval: error: {exc}", file=sys.stderr)
        return 2
    meta = evaluation.meta
    print(f"\n{meta['dataset']} ({meta['documents']} documents, {meta['judged_queries']} judged "
          f"queries), fields {', '.join(encoders)}, fusion {meta['fusion']}:")  # fmt: skip
    if "selected_on" in meta:
        print(f"fusion selected on {meta['selected_on']}")
    print(format_table(hybrid_rows(evaluation.result), HYBRID_COLUMNS))
    if args.output_json:
        details = {**evaluation.result, "meta": meta, "selection": evaluation.selection}
        args.output_json.parent.mkdir(parents=True, exist_ok=True)
        args.output_json.write_text(json.dumps(details, indent=2) + "\n")
        print(f"json: {args.output_json}")
    return 0
