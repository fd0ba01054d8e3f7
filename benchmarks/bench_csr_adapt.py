"""General vs corpus-adapted CSR: nDCG@10 per collection, each adapted on its own documents.

    python benchmarks/bench_csr_adapt.py [--model encoders/models/csr-minilm]
        [--data-dir ../shared/data] [--embeddings-cache FILE] [--steps 400] [--device auto]

For every collection: the general model's codes, then the same model adapted
(:func:`encoders.training.adapt.adapt_with_check`, what ``lsr models adapt`` runs; with
``--set wide_query_k=auto`` trained twice and the held-out check keeps one) on that
collection's documents and their first sentences only (no query, no judgment), both scored
on the collection's judged test queries; dense all-MiniLM-L6-v2 and BM25 as baselines, in
the same process. Exact search. Writes JSON to benchmarks/results/csr_adapt.json.
``--embeddings-cache``: the npz bench_csr.py writes (documents and queries), to which the
first sentences' embeddings are added.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.csr_args import add_csr_eval_args, load_embedding_cache  # noqa: E402
from benchmarks.machine import write_report  # noqa: E402
from encoders.csr import CSREncoder, load_csr  # noqa: E402
from encoders.training.adapt import (  # noqa: E402
    AdaptConfig,
    adapt_with_check,
    heldout_queries,
    pseudo_pairs,
)
from encoders.training.evaluate import (  # noqa: E402
    embeddings_for,
    evaluate_collection,
    summarize,
)
from encoders.training.retrieval import load_beir  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_csr_eval_args(p)
    p.add_argument("--steps", type=int, default=AdaptConfig.steps)
    p.add_argument("--lr", type=float, default=AdaptConfig.lr)
    p.add_argument("--no-recenter", action="store_true")
    p.add_argument("--no-bm25", action="store_true")
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="other AdaptConfig fields, e.g. query_distill_coef=1 wide_query_k=0|none|auto",
    )
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "csr_adapt.json")
    args = p.parse_args(argv)

    general = load_csr(args.model, device=args.device, normalize=args.normalize)
    ks = [k for k in args.ks if k <= general.max_k]
    cache = load_embedding_cache(args.embeddings_cache)
    n_cached = len(cache)
    config = AdaptConfig(steps=args.steps, lr=args.lr, recenter=not args.no_recenter)
    for item in args.set:
        field, _, value = item.partition("=")
        if not hasattr(config, field):
            p.error(f"--set: AdaptConfig has no field {field!r}")
        kind = type(getattr(config, field))
        if value.lower() in ("none", "auto"):  # wide_query_k: the base's width, or both
            setattr(config, field, None if value.lower() == "none" else value.lower())
            continue
        if field == "wide_query_k":
            kind = int
        setattr(config, field, value.lower() in ("1", "true") if kind is bool else kind(value))
    rows: dict[str, dict] = {}
    for name in args.collections:
        coll = load_beir(args.data_dir / name, "test")
        docs, _ = embeddings_for(general, coll, cache)
        heads, head_doc = pseudo_pairs(coll.doc_texts, config.sentences_per_doc)
        # first sentences alone, or with up to n sentences a document: one cache entry each
        key = (
            f"{name}/heads"
            if not config.sentences_per_doc
            else f"{name}/pseudo{config.sentences_per_doc}"
        )
        if key not in cache:
            cache[key] = general.embedder.embed(heads)
        base = evaluate_collection(general, coll, ks, cache, bm25=not args.no_bm25)
        if f"{name}/heldout" not in cache:
            cache[f"{name}/heldout"] = general.embedder.embed(heldout_queries(coll.doc_texts))
        t = time.perf_counter()
        chosen, _ = adapt_with_check(  # what `lsr models adapt` trains and keeps
            general.sae,
            general.settings,
            docs,
            cache[key].astype(np.float32),
            np.asarray(head_doc, np.int64),
            config,
            cache[f"{name}/heldout"].astype(np.float32),
            device=general.device,
        )
        result, settings = chosen.result, chosen.settings
        adapted = CSREncoder(result.sae, settings, device=general.device)
        row = evaluate_collection(adapted, coll, ks, cache, bm25=False)
        rows[name] = {
            "docs": base["docs"],
            "queries": base["queries"],
            "dense": base["dense"],
            "bm25": base.get("bm25"),
            "general": {k: v for k, v in base.items() if k.startswith(("csr_", "ratio_"))},
            "adapted": {k: v for k, v in row.items() if k.startswith(("csr_", "ratio_"))},
            "adapt": {**result.summary(), "wall_seconds": round(time.perf_counter() - t, 1)},
            "normalize": settings.normalize,
        }
        r = rows[name]
        print(
            f"{name:<10} dense {r['dense']:.4f}  k=64 general {r['general']['csr_k64']:.4f} "
            f"({r['general']['ratio_k64']:.3f})  adapted {r['adapted']['csr_k64']:.4f} "
            f"({r['adapted']['ratio_k64']:.3f})  FVE@64 {result.fve_before.get('k64')} -> "
            f"{result.fve_after.get('k64')}  {result.steps} steps {result.seconds:.0f} s",
            flush=True,
        )
    if args.embeddings_cache and len(cache) > n_cached:
        np.savez(args.embeddings_cache, **{k: v.astype(np.float16) for k, v in cache.items()})
    summary = {
        "general": summarize({n: r["general"] for n, r in rows.items()}, ks),
        "adapted": summarize({n: r["adapted"] for n, r in rows.items()}, ks),
    }
    print(json.dumps(summary, indent=1))
    cmd = sys.argv[1:] if argv is None else argv
    write_report(args.out, "bench_csr_adapt.py", cmd, {
        "model": str(args.model),
        "normalize": general.settings.normalize,
        "device": str(general.device),
        "adapt_config": asdict(config),
        "collections": rows,
        "summary": summary,
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
