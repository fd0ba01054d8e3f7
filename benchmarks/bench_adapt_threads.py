"""CPU corpus adaptation: seconds per training step on one torch thread against every CPU
the process was given, side by side in one process.

    python benchmarks/bench_adapt_threads.py [--model encoders/models/csr-minilm]
        [--docs 2000] [--steps 15] [--rounds 3]

Loading an encoder on the CPU sets torch to one thread per op process-wide (many small
encoding batches run side by side); ``lsr models adapt`` on a CPU used to train on that one
thread whatever the machine had. :func:`encoders.training.trainer.train_sae` now trains under
:func:`encoders.resources.training_threads` (all allotted CPUs). This times
:func:`encoders.training.adapt.adapt_sae` (the product's adaptation, its default settings
apart from ``steps``) both ways, alternating, best of ``--rounds``, on random unit
embeddings (the arithmetic does not depend on the text; no data needed). Prints a table and
writes JSON to benchmarks/results/adapt_threads.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import encoders.resources as resources  # noqa: E402
from benchmarks.machine import write_report  # noqa: E402
from encoders.csr import load_csr  # noqa: E402
from encoders.training.adapt import AdaptConfig, adapt_sae  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "adapt_threads.json"


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def seconds_per_step(sae, docs, heads, head_doc, steps: int, threads: int) -> float:
    """One adaptation of ``steps`` steps with the trainer given ``threads`` CPUs."""
    allotted = resources.allotted_cpus
    resources.allotted_cpus = lambda root=None: threads
    try:
        start = time.perf_counter()
        adapt_sae(sae, docs, heads, head_doc, AdaptConfig(steps=steps, log_every=10**9))
        return (time.perf_counter() - start) / steps
    finally:
        resources.allotted_cpus = allotted


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(ROOT / "encoders" / "models" / "csr-minilm"))
    p.add_argument("--docs", type=int, default=2000)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    enc = load_csr(args.model, device="cpu")  # sets one thread per op, as `lsr models adapt`
    d = enc.sae.config.input_dim
    docs = unit_rows(args.docs, d, 0)
    heads = unit_rows(args.docs, d, 1)
    head_doc = np.arange(args.docs, dtype=np.int64)
    allotted = resources.allotted_cpus()
    settings = sorted({1, allotted})
    best = {t: float("inf") for t in settings}
    for _ in range(args.rounds):
        for t in settings:
            best[t] = min(best[t], seconds_per_step(enc.sae, docs, heads, head_doc, args.steps, t))
    print(f"adaptation steps on the CPU ({args.docs} documents, best of {args.rounds})")
    print(f"{'threads':>8} {'s/step':>8} {'speed-up':>9}")
    for t in settings:
        print(f"{t:>8} {best[t]:>8.3f} {best[1] / best[t]:>8.2f}x")
    write_report(
        args.out,
        Path(__file__).name,
        sys.argv[1:] if argv is None else argv,
        {
            "documents": args.docs,
            "steps": args.steps,
            "rounds": args.rounds,
            "allotted_cpus": allotted,
            "torch_threads_after": torch.get_num_threads(),
            "seconds_per_step": {str(t): round(best[t], 4) for t in settings},
            "speedup_all_vs_one": round(best[1] / best[allotted], 3),
        },
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
