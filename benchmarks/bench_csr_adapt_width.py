"""Which query width corpus adaptation should train for, and how an adapted model should
score: SciFact train nDCG@10 (the selection set) and test nDCG@10 (reported, not used).

    python benchmarks/bench_csr_adapt_width.py --cache .devcarry/adapt_cache.npz \
        [--steps 1000] [--wide-query-k 0 1024] [--device cpu]

The cache is what ``benchmarks/device/adapt_sweep.py prepare`` writes (the MiniLM embeddings
of SciFact's documents, first sentences, test and train queries). For each ``--wide-query-k``
(0: the ranking losses score queries at each level's k, as documents; N: at N latents, the
width csr-minilm serves queries at), the shipped ``csr-minilm`` is adapted to SciFact's
documents (:func:`encoders.training.adapt.adapt_sae`, what ``lsr models adapt`` runs) for
``--steps`` steps, and the general and adapted models are scored with documents at 64 and
queries at 64 / 128 / 256 / 1,024 latents, plain and normalised codes. Exact search. Writes
JSON to benchmarks/results/csr_adapt_width.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import write_report  # noqa: E402
from encoders.csr import CSREncoder, load_csr  # noqa: E402
from encoders.training.adapt import AdaptConfig, adapt_sae  # noqa: E402
from encoders.training.retrieval import (  # noqa: E402
    load_beir,
    ndcg_at_10,
    query_key,
    top_dense,
    top_sparse,
)

QUERY_WIDTHS = (64, 128, 256, 1024)


def scores(sae, base, d, sets) -> dict[str, float]:
    """nDCG@10 of each split, documents at 64, queries at each width, plain and normalised."""
    out = {}
    for norm in (False, True):
        enc = CSREncoder(sae, replace(base.settings, normalize=norm), device="cpu")
        docs = enc.sparsify(d, 64)
        for split, (coll, q) in sets.items():
            for width in QUERY_WIDTHS:
                ranked = top_sparse(enc.sparsify(q, width, wide=True), docs)
                key = f"{split}_{'norm' if norm else 'plain'}_q{width}"
                out[key] = ndcg_at_10(*ranked, coll.query_ids, coll.doc_ids, coll.qrels)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cache", type=Path, required=True, help="adapt_sweep.py prepare's npz")
    p.add_argument("--model", type=Path, default=ROOT / "encoders" / "models" / "csr-minilm")
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--wide-query-k", type=int, nargs="+", default=[0, 1024])
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "csr_adapt_width.json"
    )
    args = p.parse_args(argv)

    z = np.load(args.cache)
    base = load_csr(args.model, device="cpu")
    d = z["scifact/docs"].astype(np.float32)
    sets = {
        split: (load_beir(args.data_dir / "scifact", split), z[query_key("scifact", split)])
        for split in ("train", "test")
    }
    sets = {k: (coll, q.astype(np.float32)) for k, (coll, q) in sets.items()}
    dense = {k: ndcg_at_10(*top_dense(q, d), c.query_ids, c.doc_ids, c.qrels)
             for k, (c, q) in sets.items()}  # fmt: skip
    report = {"dense": dense, "general": scores(base.sae, base, d, sets), "adapted": {}}
    for wide in args.wide_query_k:
        start = time.perf_counter()
        result = adapt_sae(
            base.sae,
            d,
            z["scifact/heads"].astype(np.float32),
            z["scifact/head_doc"],
            AdaptConfig(steps=args.steps, wide_query_k=wide),
            device=args.device,
        )
        row = scores(result.sae.float().eval(), base, d, sets)
        row.update(steps=result.steps, seconds=time.perf_counter() - start)
        report["adapted"][str(wide)] = row
    print(f"SciFact nDCG@10, documents at 64 (dense: train {dense['train']:.4f}, "
          f"test {dense['test']:.4f})")  # fmt: skip
    print(f"{'model':28s} " + " ".join(f"{f'{s} q{w}':>11s}" for s in sets for w in QUERY_WIDTHS))
    rows = {"general": report["general"]}
    rows.update({f"adapted, wide {w}": r for w, r in report["adapted"].items()})
    for name, row in rows.items():
        for norm in ("plain", "norm"):
            cells = " ".join(f"{row[f'{s}_{norm}_q{w}']:11.4f}" for s in sets for w in QUERY_WIDTHS)
            print(f"{name + ', ' + norm:28s} {cells}")
    cmd = sys.argv[1:] if argv is None else argv
    write_report(args.out, "bench_csr_adapt_width.py", cmd, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
