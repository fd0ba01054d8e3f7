"""Encoder throughput: our encoders vs a plain transformers loop and sentence-transformers.

Documents per second on the GPU and the CPU at several batch sizes, beside, in the same
process and on the same texts: (a) a straightforward transformers loop (the SPLADE formula,
bf16 autocast on CUDA, batch 128, dense weights to the host) and (b) sentence-transformers'
``SparseEncoder`` on the same model at several batch sizes (skipped where not installed).
Also: tokenizer-only rate, the fused head's share of the GPU's measured bf16 matrix rate,
peak GPU memory for 128 x 256 tokens, single-query CPU latency, and the largest absolute
difference from a float32 reference. Writes JSON to ``benchmarks/results/``.

    python benchmarks/bench_encoders.py --model splade-tiny \\
        --texts ../shared/data/vectors/docstring_docs.txt.gz --n 20000 --max-length 256

``--gpu-batch-sweep`` runs ``benchmarks/bench_encoder_batching.py`` instead (our default batch
sizing vs fixed batch sizes; its own arguments).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import MODEL_PACKAGES, machine_info  # noqa: E402
from encoders import load_encoder  # noqa: E402
from encoders.loader import resolve_model_dir  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def read_texts(path: Path, n: int) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        out = []
        for line in fh:
            out.append(line.rstrip("\n"))
            if len(out) >= n:
                break
    return out


def write_report(report: dict[str, Any], out: Path) -> Path:
    """Write a benchmark's JSON (creating its folder) and say where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return out


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str, repeats: int = 1) -> float:
    """Best wall time of ``repeats`` runs of ``fn`` (device synchronised)."""
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def plain_loop(model_dir: Path, device: str, max_length: int, dtype: torch.dtype):
    """The baseline: transformers tokenizer + MLM, the formula on full logits, batch loop."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForMaskedLM.from_pretrained(str(model_dir)).to(device).eval()

    def encode(texts: list[str], batch_size: int = 128) -> sp.csr_array:
        rows = []
        for i in range(0, len(texts), batch_size):
            batch = tok(
                texts[i : i + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(device)
            with (
                torch.inference_mode(),
                torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32),
            ):
                logits = model(**batch).logits
                weights = torch.log1p(torch.relu(logits.float()))
                weights = (weights * batch["attention_mask"][..., None]).amax(dim=1)
            rows.append(sp.csr_array(weights.cpu().numpy()))
        return sp.vstack(rows, format="csr")

    return encode


def bench_ours(name: str, texts: list[str], device: str, args, out: dict[str, Any]) -> None:
    enc = load_encoder(name, device=device, max_length=args.max_length)
    enc.encode_documents(texts[:256], batch_size=64)  # warm-up: kernels, allocator, threads
    rows = []
    sizes = args.batch_sizes if device == "cuda" else args.cpu_batch_sizes
    subset = texts if device == "cuda" else texts[: args.cpu_n]
    for bs in sizes:
        secs = timed(lambda bs=bs: enc.encode_documents(subset, batch_size=bs), device)
        rows.append({"batch_size": bs, "docs_per_s": len(subset) / secs, "seconds": secs})
        print(f"  ours[{name}] {device} bs={bs}: {len(subset) / secs:,.0f} docs/s")
    out["ours"] = rows
    matrix = enc.encode_documents(subset[:2000])
    out["avg_nnz"] = float(matrix.nnz / matrix.shape[0])
    if device == "cuda":
        bs = max(rows, key=lambda r: r["docs_per_s"])["batch_size"]
        few = texts[:512]
        ref = plain_loop(resolve_model_dir(name), device, args.max_length, torch.float32)(
            few, 64
        ).toarray()
        out["max_abs_diff_vs_fp32_reference"] = float(
            np.abs(enc.encode_documents(few).toarray() - ref).max()
        )
        print(f"  default: max |ours - fp32 reference| {out['max_abs_diff_vs_fp32_reference']:.1e}")
        variants = [
            ("head_bf16x3", {"head_precision": "bf16x3"}),
            ("head_tf32", {"head_precision": "tf32"}),
            ("head_bf16", {"head_precision": "bf16"}),
            ("gpu_streams_1", {"gpu_streams": 1}),
            ("body_fp16", {"body_dtype": "float16"}),
            ("body_bf16", {"body_dtype": "bfloat16"}),
            ("body_tf32", {"body_dtype": "tf32"}),  # last: it turns TF32 on process-wide
        ]
        out["variants"] = {}
        for label, kwargs in variants:
            other = load_encoder(name, device=device, max_length=args.max_length, **kwargs)
            other.encode_documents(texts[:256])
            secs = timed(lambda o=other: o.encode_documents(subset, batch_size=bs), device)
            diff = float(np.abs(other.encode_documents(few).toarray() - ref).max())
            out["variants"][label] = {
                "options": kwargs,
                "batch_size": bs,
                "docs_per_s": len(subset) / secs,
                "max_abs_diff_vs_fp32_reference": diff,
            }
            print(
                f"  ours[{name}] {label} bs={bs}: {len(subset) / secs:,.0f} docs/s, "
                f"max diff {diff:.1e}"
            )
        torch.backends.cuda.matmul.allow_tf32 = False
        order = np.argsort([-len(t) for t in subset], kind="stable")
        policy = enc._policy(bs, None)
        pre = list(enc._doc_batcher.batches(subset, order, policy))
        gpu_secs = timed(lambda: enc._run_streams(enc.doc_model, iter(pre), None), device)
        out["gpu_only_docs_per_s"] = len(subset) / gpu_secs
        print(f"  GPU part alone (pre-tokenised, 2 streams): {len(subset) / gpu_secs:,.0f} docs/s")
        tok_secs = timed(
            lambda: [None for _ in enc._doc_batcher.batches(subset, order, policy)], "cpu"
        )
        out["tokenize_only_texts_per_s"] = len(subset) / tok_secs
        print(f"  tokenisation alone (our batcher): {len(subset) / tok_secs:,.0f} texts/s")
        long_texts = sorted(texts, key=len, reverse=True)[:128]
        long_texts = [(t + " ") * 8 for t in long_texts]  # make sure every row has 256 tokens
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        enc.encode_documents(long_texts, batch_size=128)
        out["peak_gpu_mb_128x256"] = (torch.cuda.max_memory_allocated() - base) / 2**20
        out["peak_gpu_mb_128x256_incl_weights"] = torch.cuda.max_memory_allocated() / 2**20
        print(f"  peak GPU memory 128 x 256 tokens: {out['peak_gpu_mb_128x256']:.0f} MB")
    else:
        lat = query_latencies(enc, 100)
        out["query_latency_ms_p50"] = float(np.median(lat) * 1e3)
        out["query_latency_ms_p99"] = float(np.percentile(lat, 99) * 1e3)
        out["torch_threads"] = torch.get_num_threads()
        print(f"  single query on CPU: p50 {out['query_latency_ms_p50']:.2f} ms")
        out["screens"] = bench_cpu_screens(name, texts[: args.cpu_screen_n], args)


def query_latencies(enc: Any, repeats: int) -> list[float]:
    """Seconds of ``repeats`` one-query calls (after one warm-up call)."""
    q = ["how do I parse a date string"]
    enc.encode_queries(q)
    lat = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        enc.encode_queries(q)
        lat.append(time.perf_counter() - t0)
    return lat


def bench_cpu_screens(name: str, texts: list[str], args) -> dict[str, Any]:
    """The CPU head each way, same texts, same process: float32 (no screen), bf16 and int8
    screens (int8 only where this CPU sums int8 exactly), documents per second and one
    query's p50 latency; which one ``fast_screen`` picks here, and its ratio to the others."""
    from encoders.kernels.screened_head import fast_screen, int8_matmul_is_exact

    picked = fast_screen()
    screens: list[str | None] = [None, "bf16"] + (["int8"] if int8_matmul_is_exact() else [])
    rows: dict[str, Any] = {}
    for screen in screens:
        enc = load_encoder(name, device="cpu", max_length=args.max_length)
        enc.doc_model.screen = enc.query_model.screen = screen
        enc.encode_documents(texts[:8])
        secs = timed(lambda e=enc: e.encode_documents(texts, batch_size=16), "cpu")
        lat = query_latencies(enc, 30)
        label = screen or "float32"
        rows[label] = {"docs_per_s": len(texts) / secs, "query_ms_p50": float(np.median(lat) * 1e3)}
        print(
            f"  cpu head {label:>7}: {len(texts) / secs:7.1f} docs/s, "
            f"query p50 {rows[label]['query_ms_p50']:.2f} ms"
        )
    chosen = rows[picked or "float32"]
    return {
        "n_docs": len(texts),
        "fast_screen": picked,
        "heads": rows,
        "chosen_docs_per_s_vs_each": {
            k: chosen["docs_per_s"] / v["docs_per_s"] for k, v in rows.items()
        },
    }


def bench_tokenizers(name: str, texts: list[str], out: dict[str, Any]) -> None:
    """Where tokenisation time goes: one big call, serial chunks, threads over chunks."""
    from concurrent.futures import ThreadPoolExecutor

    from encoders.batching import load_tokenizer, truncating_copy

    tok = truncating_copy(load_tokenizer(resolve_model_dir(name)), 256)
    chunks = [texts[i : i + 256] for i in range(0, len(texts), 256)]
    res: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "TOKENIZERS_PARALLELISM": os.environ.get("TOKENIZERS_PARALLELISM"),
        "RAYON_NUM_THREADS": os.environ.get("RAYON_NUM_THREADS"),
    }
    res["one_call"] = len(texts) / timed(lambda: tok.encode_batch(texts), "cpu")
    res["serial_chunks"] = len(texts) / timed(lambda: [tok.encode_batch(c) for c in chunks], "cpu")
    for n in (4, 8, 16):
        with ThreadPoolExecutor(n) as pool:
            secs = timed(lambda pool=pool: list(pool.map(tok.encode_batch, chunks)), "cpu")
        res[f"threads_{n}"] = len(texts) / secs
    few = texts[:2000]
    res["encode_one_by_one"] = len(few) / timed(lambda: [tok.encode(t) for t in few], "cpu")
    out["tokenizer_texts_per_s"] = res
    print(
        "  tokenizer texts/s: "
        + ", ".join(f"{k} {v:,.0f}" for k, v in res.items() if isinstance(v, float))
    )


def bench_plain(name: str, texts: list[str], device: str, args, out: dict[str, Any]) -> None:
    model_dir = resolve_model_dir(name)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    encode = plain_loop(model_dir, device, args.max_length, dtype)
    subset = texts[: args.baseline_n if device == "cuda" else args.cpu_n]
    encode(subset[:256])
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    secs = timed(lambda: encode(subset, 128), device)
    out["plain_transformers_loop"] = {
        "batch_size": 128,
        "docs_per_s": len(subset) / secs,
        "dtype": str(dtype),
        "n": len(subset),
    }
    if device == "cuda":
        out["plain_transformers_loop"]["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(f"  plain transformers loop {device} bs=128: {len(subset) / secs:,.0f} docs/s")


def bench_st(name: str, texts: list[str], device: str, args, out: dict[str, Any]) -> None:
    try:
        from sentence_transformers import SparseEncoder
    except ImportError as exc:
        out["sentence_transformers"] = {"skipped": f"not installed: {exc}"}
        print("  sentence-transformers not installed: skipped")
        return
    import sentence_transformers

    model = SparseEncoder(str(resolve_model_dir(name)), device=device)
    model.max_seq_length = args.max_length
    subset = texts[: args.baseline_n if device == "cuda" else args.cpu_n]
    rows = []
    dtypes = ["float32", "bfloat16"] if device == "cuda" else ["float32"]
    for dtype in dtypes:
        if dtype == "bfloat16":
            model = model.to(torch.bfloat16)
        for bs in args.st_batch_sizes:
            model.encode_document(subset[:256], batch_size=bs)
            secs = timed(
                lambda bs=bs, model=model: model.encode_document(
                    subset, batch_size=bs, convert_to_sparse_tensor=True, save_to_cpu=True
                ),
                device,
            )
            rows.append({"batch_size": bs, "dtype": dtype, "docs_per_s": len(subset) / secs})
            print(
                f"  sentence-transformers SparseEncoder {dtype} bs={bs}: "
                f"{len(subset) / secs:,.0f} docs/s"
            )
    out["sentence_transformers"] = {
        "version": sentence_transformers.__version__,
        "runs": rows,
        "n": len(subset),
    }


def bench_head(args, out: dict[str, Any]) -> None:
    """The fused head alone on 128 x 256 tokens vs the measured bf16 matmul rate."""
    from triton.testing import do_bench

    from encoders.kernels.splade_head import fused_splade_head, prepare_weight

    hidden, vocab, docs, length = 128, 30522, 128, 256
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    mm_ms = do_bench(lambda: a @ b, return_mode="median")
    peak = 2 * 8192**3 / (mm_ms * 1e-3)
    states = torch.randn(docs * length, hidden, device="cuda")
    weight = torch.randn(vocab, hidden, device="cuda") * 0.1
    bias = torch.randn(vocab, device="cuda")
    starts = torch.arange(0, docs * length, length, dtype=torch.int32, device="cuda")
    lengths = torch.full((docs,), length, dtype=torch.int32, device="cuda")
    useful = 2 * docs * length * hidden * vocab
    res = {"bf16_matmul_tflops": peak / 1e12}
    # "fraction_of_bf16_rate" counts the products the kernel really issues (tf32 as two
    # bf16-rate products: it runs at half that rate); "useful" counts one product.
    for precision, products in (("bf16x3", 3), ("tf32", 2), ("bf16", 1), ("fp16", 1)):
        wt = prepare_weight(weight, precision)
        for stationary in (True, False):
            ms = do_bench(
                lambda wt=wt, p=precision, st=stationary: fused_splade_head(
                    states, starts, lengths, wt, bias, p, st
                ),
                return_mode="median",
            )
            label = f"{precision}_{'stationary' if stationary else 'streaming'}"
            res[label] = {
                "ms_per_128x256": ms,
                "docs_per_s": docs / (ms * 1e-3),
                "useful_tflops": useful / (ms * 1e-3) / 1e12,
                "fraction_of_bf16_rate": products * useful / (ms * 1e-3) / peak,
                "useful_fraction_of_bf16_rate": useful / (ms * 1e-3) / peak,
            }
            print(
                f"  fused head {label}: {ms:.3f} ms / 128x256, "
                f"{res[label]['fraction_of_bf16_rate']:.0%} of bf16 matmul rate "
                f"({peak / 1e12:.0f} TFLOP/s measured)"
            )
    out["head"] = res


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--gpu-batch-sweep" in argv:  # default vs fixed batch sizes: its own script
        from benchmarks.bench_encoder_batching import main as batch_sweep

        argv.remove("--gpu-batch-sweep")
        return batch_sweep(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="splade-tiny")
    parser.add_argument(
        "--texts",
        type=Path,
        nargs="+",
        default=[Path("../shared/data/vectors/docstring_docs.txt.gz")],
    )
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--baseline-n", type=int, default=5000)
    parser.add_argument("--cpu-n", type=int, default=500)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--cpu-batch-sizes", type=int, nargs="+", default=[16, 64])
    parser.add_argument(
        "--cpu-screen-n", type=int, default=64, help="documents for the CPU head comparison"
    )
    parser.add_argument("--st-batch-sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--devices", nargs="+", default=None)
    parser.add_argument("--skip", nargs="*", default=[], help="any of: plain st head tok cpu")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    devices = args.devices or (["cuda", "cpu"] if torch.cuda.is_available() else ["cpu"])
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "model": args.model,
        "max_length": args.max_length,
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "machine": machine_info(MODEL_PACKAGES),
        "datasets": {},
    }
    for path in args.texts:
        texts = read_texts(path, args.n)
        name = path.name.split(".")[0]
        print(f"{name}: {len(texts)} texts")
        data: dict[str, Any] = {"n": len(texts)}
        for device in devices:
            if device == "cpu" and "cpu" in args.skip:
                continue
            res: dict[str, Any] = {}
            bench_ours(args.model, texts, device, args, res)
            if device == "cuda" and "tok" not in args.skip:
                bench_tokenizers(args.model, texts, res)
            if "plain" not in args.skip:
                bench_plain(args.model, texts, device, args, res)
            if "st" not in args.skip:
                bench_st(args.model, texts, device, args, res)
            best = max(r["docs_per_s"] for r in res["ours"])
            res["speedup_vs_plain_loop"] = (
                best / res["plain_transformers_loop"]["docs_per_s"]
                if "plain_transformers_loop" in res
                else None
            )
            st_runs = res.get("sentence_transformers", {}).get("runs", [])
            res["speedup_vs_sentence_transformers_best"] = (
                best / max(r["docs_per_s"] for r in st_runs) if st_runs else None
            )
            print(
                f"  => {device}: best {best:,.0f} docs/s; x{res['speedup_vs_plain_loop'] or 0:.1f} "
                f"vs plain loop, x{res['speedup_vs_sentence_transformers_best'] or 0:.1f} vs "
                "SparseEncoder"
            )
            data[device] = res
        report["datasets"][name] = data
    if "cuda" in devices and "head" not in args.skip:
        bench_head(args, report)
    write_report(
        report, args.out or RESULTS / f"encoders_{'gpu' if 'cuda' in devices else 'cpu'}.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
