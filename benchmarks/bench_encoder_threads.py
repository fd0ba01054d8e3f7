"""GPU document encoding over tokenizer threads x CUDA streams (SPLADE path).

Each setting loads the encoder with ``tokenizer_threads`` / ``gpu_streams``, warms it up and
encodes the same texts at each batch size (best of ``--repeats``). All settings run in one
process, so they compare among themselves; run the script under several
``RAYON_NUM_THREADS`` values (the fast tokenizer's own pool) to see that axis too. Prints a
table per text file and writes JSON to ``benchmarks/results/``.

    python benchmarks/bench_encoder_threads.py \\
        --texts ../shared/data/vectors/packages_docs.txt.gz:512,1024 \\
                ../shared/data/vectors/docstring_docs.txt.gz:256,512
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_encoders import RESULTS, read_texts, timed  # noqa: E402
from encoders import load_encoder  # noqa: E402


def parse_texts(spec: str) -> tuple[Path, list[int]]:
    """``PATH[:BS,BS,...]`` -> (path, batch sizes; default 512)."""
    path, _, sizes = spec.partition(":")
    return Path(path), [int(b) for b in sizes.split(",")] if sizes else [512]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="splade-tiny")
    parser.add_argument("--texts", nargs="+", required=True, help="PATH[:BS,BS,...]")
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda", help="cuda (the point of it) or cpu")
    parser.add_argument("--out", type=Path, default=RESULTS / "encoder_threads.json")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device (pass --device cpu to try the sweep on the CPU)")
        return 1

    data = {}
    for spec in args.texts:
        path, sizes = parse_texts(spec)
        data[path.name.split(".")[0]] = (read_texts(path, args.n), sizes)
    rayon = os.environ.get("RAYON_NUM_THREADS", "unset")
    rates: dict[tuple[str, int, int, int], int] = {}
    for threads in args.threads:
        for streams in args.streams:
            enc = load_encoder(
                args.model,
                device=args.device,
                max_length=256,
                tokenizer_threads=threads,
                gpu_streams=streams,
            )
            first = next(iter(data.values()))[0]
            enc.encode_documents(first[:512], batch_size=128)  # warm-up
            for name, (texts, sizes) in data.items():
                for bs in sizes:
                    secs = timed(
                        lambda e=enc, t=texts, b=bs: e.encode_documents(t, batch_size=b),
                        args.device,
                        args.repeats,
                    )
                    rates[name, bs, threads, streams] = round(len(texts) / secs)
    for name, (_, sizes) in data.items():
        print(f"{name} (RAYON_NUM_THREADS={rayon}): k docs/s, rows threads, columns streams")
        for bs in sizes:
            print(f"  bs={bs}")
            for threads in args.threads:
                cells = [rates[name, bs, threads, s] / 1000 for s in args.streams]
                print(f"    threads={threads}: " + "  ".join(f"{c:6.1f}" for c in cells))
    rows = [
        {"rayon": rayon, "threads": t, "streams": s, "texts": n, "bs": b, "docs_per_s": r}
        for (n, b, t, s), r in rates.items()
    ]
    report = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "device": args.device,
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "cpu_count": os.cpu_count(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
