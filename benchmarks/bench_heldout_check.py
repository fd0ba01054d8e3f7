"""Does the label-free held-out check order CSR settings as the judgments do?

    python benchmarks/bench_heldout_check.py [--data-dir ../shared/data]
        [--embeddings-cache FILE] [--indomain encoders/models/csr-minilm-indomain]

``lsr models adapt`` reports :func:`encoders.training.adapt.heldout_overlap` (the share of the
dense top 10 the codes also rank in their top 10, for later sentences of the corpus) so that a
user without judgments can see whether an adapted model ranks closer to the dense model than
its base. This benchmark asks how far that check, and a second label-free one (the mean
reciprocal rank, to depth 10, of the document each held-out sentence came from), can be
trusted: on every shared collection, several settings of two fixed models (csr-minilm with
its codes plain or normalised, queries at 64 or 1,024 latents; csr-minilm-indomain, trained on
these collections' documents) are scored by both checks and by test nDCG@10, and every pair
of settings on a collection counts as agreeing when a check and the judgments put the two in
the same order. Pairs whose nDCG@10 differs by more than 0.01 are also counted apart (smaller
differences are within what these query sets separate). The training choice the check was
also asked to make (adaptation trained with queries as documents or wide,
``benchmarks/results/csr_adapt_sweep4_h200.json``) is read back and counted the same way.
Exact search; writes JSON to benchmarks/results/heldout_check.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.csr_args import load_embedding_cache  # noqa: E402
from benchmarks.machine import write_report  # noqa: E402
from encoders.csr import CSREncoder, CSRSettings, load_csr  # noqa: E402
from encoders.training.adapt import OVERLAP_DEPTH, heldout_overlap, heldout_sentences  # noqa: E402
from encoders.training.evaluate import embeddings_for  # noqa: E402
from encoders.training.retrieval import (  # noqa: E402
    COLLECTIONS,
    load_beir,
    ndcg_at_10,
    top_dense,
    top_sparse,
)

# (model, query_k, normalize) of each setting scored
SETTINGS = {
    "general_norm_q1024": ("general", 1024, True),
    "general_plain_q1024": ("general", 1024, False),
    "general_norm_q64": ("general", 64, True),
    "general_plain_q64": ("general", 64, False),
    "indomain_plain_q64": ("indomain", 64, False),
    "indomain_norm_q64": ("indomain", 64, True),
}
CLEAR_GAP = 0.01
CHECKS = ("overlap", "self_mrr10")


def self_mrr(scores: np.ndarray, source: np.ndarray) -> float:
    """Mean reciprocal rank, to depth :data:`OVERLAP_DEPTH`, of each row's ``source`` column
    in ``scores`` ``(queries, docs)``; a source scored 0 or less is not ranked."""
    own = scores[np.arange(len(source)), source]
    rank = (scores > own[:, None]).sum(1) + 1
    hit = (own > 0) & (rank <= OVERLAP_DEPTH)
    return float(np.mean(np.where(hit, 1.0 / rank, 0.0)))


def agreement(rows: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, int]]:
    """Per check: pairs of settings (within a collection) it orders as the judgments do, all
    pairs and those with a test gap over :data:`CLEAR_GAP`."""
    out = {c: {"agree": 0, "pairs": 0, "clear_agree": 0, "clear_pairs": 0} for c in CHECKS}
    for row in rows.values():
        for a, b in itertools.combinations(sorted(row), 2):
            gap = row[a]["test"] - row[b]["test"]
            for check in CHECKS:
                if check not in row[a] or check not in row[b]:
                    continue
                same = (gap > 0) == (row[a][check] - row[b][check] > 0)
                tally = out[check]
                tally["pairs"] += 1
                tally["agree"] += same
                if abs(gap) > CLEAR_GAP:
                    tally["clear_pairs"] += 1
                    tally["clear_agree"] += same
    return out


def adaptation_pairs(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """The two adaptation widths of round 4 per collection: test nDCG@10 as served and the
    held-out overlap, as the sweep measured them."""
    if not path.is_file():
        return {}
    final = json.loads(path.read_text())["final"]
    return {
        coll: {
            w: {"test": row[w]["test"], "overlap": row[w]["overlap"]}
            for w in ("width_0", "width_1024")
        }
        for coll, row in final.items()
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=ROOT / "encoders" / "models" / "csr-minilm")
    p.add_argument(
        "--indomain", type=Path, default=ROOT / "encoders" / "models" / "csr-minilm-indomain"
    )
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--collections", nargs="+", default=list(COLLECTIONS))
    p.add_argument("--embeddings-cache", type=Path, default=None, help="npz of dense embeddings")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--sweep",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "csr_adapt_sweep4_h200.json",
        help="round 4 of the adaptation sweep (the width choice), read back",
    )
    p.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "heldout_check.json"
    )
    args = p.parse_args(argv)

    general = load_csr(args.model, device=args.device)
    models = {"general": general, "indomain": load_csr(args.indomain, device=args.device)}
    cache = load_embedding_cache(args.embeddings_cache)
    n_cached = len(cache)
    rows: dict[str, dict] = {}
    for name in args.collections:
        coll = load_beir(args.data_dir / name, "test")
        docs, queries = embeddings_for(general, coll, cache)
        held = heldout_sentences(coll.doc_texts)
        source = np.asarray([i for i, _ in held], np.int64)
        if f"{name}/heldout_sentences" not in cache:
            cache[f"{name}/heldout_sentences"] = general.embedder.embed([t for _, t in held])
        sentences = cache[f"{name}/heldout_sentences"].astype(np.float32)
        dense = ndcg_at_10(*top_dense(queries, docs), coll.query_ids, coll.doc_ids, coll.qrels)
        row: dict[str, dict[str, float]] = {}
        for setting, (model, query_k, normalize) in SETTINGS.items():
            base = models[model]
            settings = CSRSettings(default_k=64, query_k=query_k, normalize=normalize)
            enc = CSREncoder(base.sae, settings, device=base.device)
            doc_codes = enc.sparsify(docs, 64)
            wide = query_k > base.sae.config.k
            ranked = top_sparse(enc.sparsify(queries, query_k, wide=wide), doc_codes)
            scores = (enc.sparsify(sentences, query_k, wide=wide) @ doc_codes.T).toarray()
            row[setting] = {
                "test": ndcg_at_10(*ranked, coll.query_ids, coll.doc_ids, coll.qrels),
                "overlap": heldout_overlap(base.sae, settings, docs, sentences),
                "self_mrr10": self_mrr(scores, source),
            }
        rows[name] = row
        print(f"{name:<10} dense {dense:.4f}  held-out sentences {len(held)}", flush=True)
        for setting, r in row.items():
            print(
                f"  {setting:<22} test {r['test']:.4f}  overlap {r['overlap']:.4f}  "
                f"self MRR@10 {r['self_mrr10']:.4f}",
                flush=True,
            )
    if args.embeddings_cache and len(cache) > n_cached:
        np.savez(args.embeddings_cache, **{k: v.astype(np.float16) for k, v in cache.items()})
    settings_agree = agreement(rows)
    widths = adaptation_pairs(args.sweep)
    width_agree = agreement(widths) if widths else {}
    print(f"\npairs of settings ordered as the judgments order them (clear: |gap| > {CLEAR_GAP})")
    for label, table in (
        ("fixed models' settings", settings_agree),
        ("adaptation width", width_agree),
    ):
        for check, t in table.items():
            if t["pairs"]:
                print(
                    f"  {label:<24} {check:<11} {t['agree']}/{t['pairs']} "
                    f"(clear {t['clear_agree']}/{t['clear_pairs']})"
                )
    cmd = sys.argv[1:] if argv is None else argv
    write_report(args.out, "bench_heldout_check.py", cmd, {
        "models": {"general": str(args.model), "indomain": str(args.indomain)},
        "settings": SETTINGS,
        "heldout_depth": OVERLAP_DEPTH,
        "clear_gap": CLEAR_GAP,
        "collections": rows,
        "agreement_settings": settings_agree,
        "adaptation_widths": widths,
        "agreement_adaptation_widths": width_agree,
    })  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
