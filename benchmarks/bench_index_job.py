"""``lsr index`` encoding, two ways on one machine: plain vs Ray Data with N CPU workers
(``--compare ray``), or one GPU vs one worker per GPU (``--compare gpus``).

Runs the real command line (``--no-build``: the index build is the same for both) on one
corpus, alternating the two ways so that a change in the machine's load hits both, into
fresh output folders; checks that both wrote the same shard files byte for byte, and
records wall time, the job's own encoding rate, the load average, the CPU and the versions.

    python benchmarks/bench_index_job.py --corpus ../shared/data/scifact --ray-workers 2 \
        --shard-size 512 --repeats 2
    python benchmarks/bench_index_job.py --compare gpus \
        --corpus ../shared/data/vectors/docstring_docs.txt.gz --shard-size 16384   # GPU host

Prints a short table and writes ``benchmarks/results/index_job_<compare>_<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.index_job_resume import lsr_index  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_info() -> dict[str, object]:
    """CPU model, flags of interest and cache sizes from /proc/cpuinfo and lscpu (Linux)."""
    info: dict[str, object] = {"cpus": os.cpu_count(), "platform": platform.platform()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        info["model"] = fields.get("model name\t", "").strip()
        flags = set(fields.get("flags\t\t", "").split())
        info["flags"] = sorted(
            flags & {"avx2", "avx512f", "avx512_vnni", "f16c", "fma", "amx_bf16"}
        )
    except OSError:
        pass
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip().startswith(("L1d", "L2", "L3")):
                info[key.strip()] = value.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return info


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "ray", "numpy", "numba", "llvmlite", "pyarrow", "transformers"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def ways(args: argparse.Namespace) -> dict[str, list[str]]:
    """The two command-line variants compared: name -> extra ``lsr index`` arguments."""
    if args.compare == "gpus":
        return {"one-gpu": ["--device", "cuda:0"], "all-gpus": []}
    ray = ["--ray", "local", "--ray-workers", str(args.ray_workers)]
    return {"plain": ["--device", "cpu"], "ray": ["--device", "cpu", *ray]}


def run_job(args: argparse.Namespace, out: Path, way: str, extra: list[str]) -> dict[str, object]:
    """One ``lsr index`` run into a fresh ``out``; wall seconds and the job's summary."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [*lsr_index(argparse.Namespace(**{**vars(args), "device": None}), out), "--no-build"]
    cmd += extra
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    summary = json.loads((out / "summary.json").read_text())
    return {
        "path": way,
        "wall_s": round(wall, 2),
        "encode_stage_s": summary["stages_s"]["encode"],
        "encode_docs_per_s": summary["encode_docs_per_s"],
        "documents": summary["documents"],
        "load_1m_before": round(load_before, 2),
        "load_1m_after": round(os.getloadavg()[0], 2),
    }


def same_shards(a: Path, b: Path) -> bool:
    files_a = sorted((a / "shards").glob("shard-*.parquet"))
    files_b = sorted((b / "shards").glob("shard-*.parquet"))
    return [f.name for f in files_a] == [f.name for f in files_b] and all(
        fa.read_bytes() == fb.read_bytes() for fa, fb in zip(files_a, files_b, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--compare", choices=("ray", "gpus"), default="ray")
    parser.add_argument("--encoder", default="splade-tiny")
    parser.add_argument("--ray-workers", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="only the first N documents")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_index_job"))
    parser.add_argument("--name", default=None, help="result name (default: the corpus name)")
    args = parser.parse_args()
    name = args.name or Path(args.corpus.rstrip("/")).name.split(".")[0]
    runs = []
    variants = ways(args)
    first, second = variants
    for repeat in range(args.repeats):
        for way, extra in variants.items():
            run = run_job(args, args.work / way, way, extra)
            run["repeat"] = repeat
            runs.append(run)
            print(
                f"{run['path']:>5}  wall {run['wall_s']:7.1f} s"
                f"  encode {run['encode_stage_s']:7.1f} s"
                f"  {run['encode_docs_per_s']:7.1f} docs/s  load {run['load_1m_before']}"
            )
    identical = same_shards(args.work / first, args.work / second)
    best = {p: min(r["wall_s"] for r in runs if r["path"] == p) for p in variants}
    result = {
        "command": " ".join(sys.argv),
        "corpus": args.corpus,
        "encoder": args.encoder,
        "shard_size": args.shard_size,
        "limit": args.limit,
        "ray_workers": args.ray_workers,
        "runs": runs,
        "best_wall_s": best,
        "compare": args.compare,
        f"{second}_over_{first}": round(best[second] / best[first], 3),
        "shards_identical": identical,
        "machine": cpu_info(),
        "versions": versions(),
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"index_job_{args.compare}_{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    ratio = result[f"{second}_over_{first}"]
    print(
        f"best wall: {first} {best[first]} s, {second} {best[second]} s "
        f"(x{ratio}); shards identical: {identical}; {path}"
    )


if __name__ == "__main__":
    main()
