"""``lsr eval``: score an encoder with exact search, the Seismic index and BM25 on one dataset."""

from __future__ import annotations

import argparse
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
    p.add_argument("--encoder", default="splade-tiny", help="encoder name, directory or HF id")
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


def run(args: argparse.Namespace) -> int:
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
