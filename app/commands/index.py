"""``lsr index``: the batch job (stream a corpus, encode into resumable shards, build the index)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.jobs.errors import CorpusError, DatasetUnavailableError, JobStateError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "index",
        help="encode a corpus and build an index (batch job)",
        description="Streams a corpus, encodes it in length-sorted batches into Parquet shards "
        "(a killed job resumes after its last complete shard) and builds a SeismicIndex.",
    )
    p.add_argument("--corpus", required=True,
                   help="texts: JSONL / Parquet / .txt[.gz] (one text per line), a BEIR folder or "
                   "an ir_datasets id; precomputed vectors (indexed as given, never re-encoded): "
                   "JSONL with a 'vector' {token: weight} (Anserini JsonVectorCollection, "
                   "Seismic jsonl), a big-ann .csr file, Parquet with indices/values "
                   "columns")  # fmt: skip
    p.add_argument("--encoder", default="splade-tiny",
                   help="encoder name, directory or HF id; 'none' for precomputed vectors "
                   "(with vectors, a named encoder only lends its vocabulary)")  # fmt: skip
    p.add_argument("--vocab", default=None, metavar="encoder|ids|build|FILE",
                   help="token keys of given vectors -> columns: the encoder's word pieces "
                   "(default with an encoder), column numbers as strings (default with "
                   "--encoder none), a vocabulary built in order of first use and saved as "
                   "OUT/vocab.json, or a vocab.txt / JSON list file")  # fmt: skip
    p.add_argument("--dim", type=int, default=None,
                   help="width of given vectors (default: the vocabulary's, the .csr header's, "
                   "or the largest column + 1)")  # fmt: skip
    p.add_argument("--out", required=True, type=Path, help="output folder (shards, index, ids)")
    p.add_argument("--index-params", nargs="*", default=[], metavar="KEY=VALUE",
                   help="SeismicIndex.build parameters, e.g. n_postings=3500")  # fmt: skip
    p.add_argument("--shard-size", type=int, default=4096, help="documents per encoded shard")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="texts per encoder batch (default: the encoder's, larger on a GPU)",
    )
    p.add_argument("--device", default=None,
                   help="encoder device (cuda, cpu, cuda:1; 'cuda:0,cuda:1' = one worker per "
                   "device; default: auto, one worker per GPU when there are several)")  # fmt: skip
    p.add_argument("--limit", type=int, default=None, help="only the first N documents")
    p.add_argument(
        "--max-shards",
        type=int,
        default=None,
        help="stop after encoding N new shards (resume with the same command)",
    )
    p.add_argument("--no-build", action="store_true", help="encode only, do not build the index")
    p.add_argument("--overwrite", action="store_true",
                   help="discard shards of a job with other settings in --out")  # fmt: skip
    p.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS|local",
        help="encode on Ray Data (a cluster address, or 'local'); needs ray[data]",
    )
    p.add_argument("--ray-workers", type=int, default=1,
                   help="encoder actors (default 1; with GPUs, one per GPU is used)")  # fmt: skip
    p.add_argument(
        "--collection",
        default=None,
        metavar="NAME",
        help="also publish the documents as a service collection NAME (sealed)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path("lsr-data"),
        help="the service's data dir for --collection (default ./lsr-data)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def format_summary(summary: dict) -> str:
    """A few human lines from :class:`app.jobs.indexing.IndexJobSummary`."""
    mib = 1 << 20
    lines = [
        f"documents        {summary['documents']:,} in {summary['shards_total']} shards "
        f"({summary['shards_reused']} reused, {summary['shards_encoded']} encoded now)",
        f"encoded now      {summary['docs_encoded']:,} documents, "
        f"{summary['encode_docs_per_s']:.1f} docs/s",
        f"non-zeros/doc    {summary['nnz_per_doc']}",
        f"shards size      {summary['shards_bytes'] / mib:.1f} MiB",
        f"index size       {summary['index_bytes'] / mib:.1f} MiB",
        f"vectors          {summary['vectors']} (dim {summary['dim']})",
        "time per stage   " + ", ".join(f"{k} {v:.1f} s" for k, v in summary["stages_s"].items()),
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from app.jobs.indexing.job import IndexJobConfig, run_index_job
    from app.jobs.params import parse_params

    try:
        config = IndexJobConfig(
            corpus=args.corpus, encoder=args.encoder, out=args.out,
            shard_size=args.shard_size, batch_size=args.batch_size,
            index_params=parse_params(args.index_params), device=args.device,
            limit=args.limit, max_shards=args.max_shards, overwrite=args.overwrite,
            build_index=not args.no_build, ray=args.ray, ray_workers=args.ray_workers,
            progress=not args.no_progress, collection=args.collection,
            data_dir=args.data_dir, vocab=args.vocab, dim=args.dim,
        )  # fmt: skip
        summary = run_index_job(config)
    except (CorpusError, DatasetUnavailableError, JobStateError, ValueError) as exc:
        print(f"lsr index: error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary.to_dict()))
    if not summary.complete:
        print(f"stopped early: run the same command again to resume ({args.out})")
        return 3
    if config.build_index:
        print(f"index: {args.out / 'index'}  ids: {args.out / 'doc_ids.parquet'}")
    if summary.collection:
        print(
            f"collection: {summary.collection['collection']} at {summary.collection['path']} "
            f"(lsr serve --data-dir {args.data_dir})"
        )
    return 0
