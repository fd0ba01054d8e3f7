"""Batch sizing on the GPU: our default (a budget of padded tokens) vs fixed batch sizes.

On each text set: documents per second of ``encode_documents`` with the encoder's default,
with fixed batch sizes (128 ... 2,048 texts) and with other token budgets, all in one
process, measured round-robin (best of ``--repeats``); then whether the default reaches
within 10% of the best fixed size (issue 10's bar). Also checked, since the Ray path needs
byte-identical shards: the same texts give the same bytes twice, in a fresh process, with
every pinned tile of the fused head, and on ``cuda:1`` when there is one. Prints a table and
writes JSON (GPU, CPU model, versions) to ``benchmarks/results/``.

    python benchmarks/bench_encoders.py --gpu-batch-sweep \\
        --texts ../shared/data/vectors/docstring_docs.txt.gz \\
                ../shared/data/vectors/packages_docs.txt.gz --n 20000

(the same as ``python benchmarks/bench_encoder_batching.py ...``); ``--device cpu --n 200``
tries it on the CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_encoders import RESULTS, read_texts, write_report  # noqa: E402
from encoders import load_encoder  # noqa: E402
from encoders.batching import plan_batches, sort_by_length, token_ids  # noqa: E402

FIXED = (128, 256, 512, 1024, 2048)
BUDGETS = (16384, 32768, 65536, 131072, 262144)
BAR = 0.9  # the default must reach 90% of the best fixed batch size


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import tokenizers
    import transformers

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "host": platform.node(),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": np.__version__,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cuda": torch.version.cuda,
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    return info


def digest(matrix) -> str:
    """sha256 of a CSR matrix's arrays: equal digests = byte-identical vectors."""
    parts = (matrix.indptr.astype(np.int64), matrix.indices, matrix.data)
    return hashlib.sha256(b"".join(p.tobytes() for p in parts)).hexdigest()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def sweep(enc, texts: list[str], settings: dict[str, dict], repeats: int, device: str) -> dict:
    """Best seconds of each setting, the settings taking turns (so drift hits all alike)."""
    best = dict.fromkeys(settings, float("inf"))
    for _ in range(repeats):
        for label, kwargs in settings.items():
            sync(device)
            t0 = time.perf_counter()
            enc.encode_documents(texts, **kwargs)
            sync(device)
            best[label] = min(best[label], time.perf_counter() - t0)
    return best


def plan_stats(enc, texts: list[str], ids: list[list[int]], kwargs: dict) -> dict[str, Any]:
    """Batches, padded and real tokens of a setting's plan (``ids``: every text's tokens)."""
    policy = enc._policy(kwargs.get("batch_size"), kwargs.get("token_budget"))
    order = sort_by_length(texts, np.array([i for i, t in enumerate(texts) if t.strip()]))
    batches = [b for _, b in plan_batches(order, policy, lambda rows: [ids[r] for r in rows])]
    real = sum(len(x) for b in batches for x in b)
    padded = sum(len(b) * max(map(len, b)) for b in batches)
    return {"batches": len(batches), "padded_tokens": padded, "real_tokens": real}


def determinism(enc, args, path: Path, texts: list[str]) -> dict[str, Any]:
    """Byte-identity of the default path: twice here, in a fresh process, every pinned tile
    of the fused head, the autotuned head, and ``cuda:1``."""
    few = texts[: args.check_n]
    here = digest(enc.encode_documents(few))
    out: dict[str, Any] = {"n": len(few), "digest": here}
    out["same_twice"] = digest(enc.encode_documents(few)) == here
    cmd = [sys.executable, __file__, "--digest", str(path), "--n", str(len(few))]
    cmd += ["--device", args.device, "--model", args.model, "--max-length", str(args.max_length)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    fresh = proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 else proc.stderr[-500:]
    out["same_in_fresh_process"] = fresh == here
    model = enc.doc_model
    if getattr(model, "fused", False):
        from encoders.kernels import splade_head, splade_head_stationary

        stationary = model.hidden_size <= splade_head_stationary.MAX_HIDDEN
        configs = splade_head_stationary.CONFIGS if stationary else splade_head.CONFIGS
        tiles = {}
        for i in range(len(configs)):
            model.head_config = i
            model._warm_up()  # compile the tile in this thread (Triton's JIT is not thread-safe)
            tiles[str(i)] = digest(enc.encode_documents(few)) == here
        model.head_config = 0
        out["same_with_each_pinned_tile"] = tiles
        tuned = load_encoder(
            args.model, device=args.device, max_length=args.max_length, head_autotune=True
        )
        tuned.encode_documents(texts[:256])
        out["same_when_autotuned"] = digest(tuned.encode_documents(few)) == here
        secs = sweep(tuned, texts, {"default": {}}, args.repeats, args.device)["default"]
        out["autotuned_docs_per_s"] = len(texts) / secs
    if args.device.startswith("cuda") and torch.cuda.device_count() > 1:
        other = load_encoder(args.model, device="cuda:1", max_length=args.max_length)
        other.encode_documents(texts[:256])
        out["same_on_cuda1"] = digest(other.encode_documents(few)) == here
        secs = sweep(other, texts, {"default": {}}, args.repeats, "cuda:1")["default"]
        out["cuda1_docs_per_s"] = len(texts) / secs
    return out


def run_set(enc, path: Path, args) -> dict[str, Any]:
    texts = read_texts(path, args.n)
    settings: dict[str, dict] = {"default": {}}
    settings.update({f"batch {bs}": {"batch_size": bs} for bs in args.fixed})
    settings.update(
        {f"budget {b}": {"token_budget": b} for b in args.budgets if b != enc.token_budget}
    )
    enc.encode_documents(texts[:512])  # warm-up: kernels, allocator, threads
    t0 = time.perf_counter()
    ids = token_ids(enc._doc_tok, texts)
    tokenize_rate = len(texts) / (time.perf_counter() - t0)
    secs = sweep(enc, texts, settings, args.repeats, args.device)
    rates = {label: len(texts) / s for label, s in secs.items()}
    best_fixed = max((label for label in rates if label.startswith("batch ")), key=rates.get)
    ratio = rates["default"] / rates[best_fixed]
    return {
        "n": len(texts),
        "mean_tokens": float(np.mean([len(x) for x in ids])),
        "tokenize_only_texts_per_s": tokenize_rate,
        "docs_per_s": rates,
        "plans": {label: plan_stats(enc, texts, ids, kw) for label, kw in settings.items()},
        "best_fixed": best_fixed,
        "default_vs_best_fixed": ratio,
        "default_within_10pct": ratio >= BAR,
        "determinism": determinism(enc, args, path, texts) if args.check_n else None,
    }


def print_table(report: dict[str, Any]) -> None:
    sets = report["sets"]
    names = list(sets)
    labels = list(next(iter(sets.values()))["docs_per_s"])
    print(f"\n{'setting':<16}" + "".join(f"{n:>28}" for n in names))
    for label in labels:
        cells = []
        for n in names:
            rate = sets[n]["docs_per_s"][label]
            plan = sets[n]["plans"][label]
            cells.append(f"{rate:>12,.0f}/s {plan['batches']:>5} batches")
        print(f"{label:<16}" + "".join(f"{c:>28}" for c in cells))
    for n in names:
        s = sets[n]
        verdict = "yes" if s["default_within_10pct"] else "NO"
        checks = {k: v for k, v in (s["determinism"] or {}).items() if k not in ("n", "digest")}
        print(
            f"{n}: default {s['default_vs_best_fixed']:.1%} of best fixed ({s['best_fixed']}); "
            f"within 10%: {verdict}; byte checks {checks}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="splade-tiny")
    parser.add_argument("--texts", type=Path, nargs="+", default=None)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--fixed", type=int, nargs="+", default=list(FIXED))
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check-n", type=int, default=2000, help="texts for byte checks (0: none)")
    parser.add_argument("--digest", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.digest is not None:  # the fresh process of the determinism check
        enc = load_encoder(args.model, device=args.device, max_length=args.max_length)
        print(digest(enc.encode_documents(read_texts(args.digest, args.n))))
        return 0
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "vectors"
    paths = args.texts or [shared / f"{n}_docs.txt.gz" for n in ("docstring", "packages")]
    enc = load_encoder(args.model, device=args.device, max_length=args.max_length)
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "model": args.model,
        "device": args.device,
        "max_length": args.max_length,
        "default_token_budget": enc.token_budget,
        "default_max_texts": enc.policy.max_texts,
        "machine": machine(),
        "sets": {},
    }
    for path in paths:
        name = path.name.split(".")[0]
        print(f"{name}: {args.n} texts, {args.device}", flush=True)
        report["sets"][name] = run_set(enc, path, args)
    print_table(report)
    report["default_within_10pct_everywhere"] = all(
        s["default_within_10pct"] for s in report["sets"].values()
    )
    kind = "gpu" if args.device.startswith("cuda") else "cpu"
    write_report(report, args.out or RESULTS / f"encoder_batching_{kind}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
