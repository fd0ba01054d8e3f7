"""``lsr index`` killed with SIGKILL mid-way, resumed, and compared with a run never killed.

Runs the real command line three times on one corpus: (1) ``lsr index`` until at least
``--kill-after`` shards are complete, then ``kill -9``; (2) the same command again, which
must skip the finished shards (their files are not rewritten: same inode and mtime) and
finish; (3) the same job into a fresh folder in one go. Then it checks that the two runs
hold the same shards (doc ids, term ids, weights), the same row -> doc id map, and that
their indexes answer the same top-10 for the corpus' queries.

    python benchmarks/index_job_resume.py --corpus ../shared/data/vectors/packages_docs.txt.gz \
        --queries ../shared/data/vectors/packages_queries.txt.gz --encoder splade-tiny \
        --work /tmp/resume --name packages

Prints a short table and writes ``benchmarks/results/index_job_resume_<name>.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

RESULTS = Path(__file__).resolve().parent / "results"


def complete_shards(out: Path) -> list[Path]:
    return sorted((out / "shards").glob("shard-*.parquet"))


def lsr_index(args: argparse.Namespace, out: Path) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "app.cli",
        "index",
        "--corpus",
        args.corpus,
        "--encoder",
        args.encoder,
        "--out",
        str(out),
        "--shard-size",
        str(args.shard_size),
        "--no-progress",
    ]
    if args.device:
        cmd += ["--device", args.device]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    return cmd


def run_killed(args: argparse.Namespace, out: Path) -> dict:
    """Start the job, SIGKILL it once ``kill_after`` shards are complete."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        lsr_index(args, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    while proc.poll() is None and len(complete_shards(out)) < args.kill_after:
        time.sleep(0.01)
    if proc.poll() is not None:
        raise SystemExit(
            f"the job ended (rc {proc.returncode}) before {args.kill_after} shards "
            f"were complete: lower --kill-after or --shard-size\n{proc.stderr.read()}"
        )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = complete_shards(out)
    return {
        "seconds": time.perf_counter() - start,
        "shards_complete_at_kill": len(done),
        "index_built_before_kill": (out / "index" / "manifest.json").exists(),
        "files": {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in done},
    }


def run_to_end(args: argparse.Namespace, out: Path) -> dict:
    start = time.perf_counter()
    proc = subprocess.run(lsr_index(args, out), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"lsr index failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    return {"seconds": time.perf_counter() - start, "log_tail": proc.stderr[-1500:]}


def read_shards(out: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    ids: list[str] = []
    lengths, indices, values = [], [], []
    for path in complete_shards(out):
        table = pq.read_table(path)
        ids += table.column("doc_id").to_pylist()
        col_i = table.column("indices").combine_chunks()
        col_v = table.column("values").combine_chunks()
        lengths.append(col_i.value_lengths().to_numpy())
        indices.append(col_i.flatten().to_numpy())
        values.append(col_v.flatten().to_numpy())
    return ids, np.concatenate(lengths), np.concatenate(indices), np.concatenate(values)


def read_lines(path: str) -> list[str]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh if line.strip()]


def compare(args: argparse.Namespace, resumed: Path, single: Path) -> dict:
    from encoders import load_encoder
    from index import SeismicIndex

    a, b = read_shards(resumed), read_shards(single)
    same_ids = a[0] == b[0]
    same_struct = np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    max_diff = float(np.abs(a[3] - b[3]).max()) if same_struct else float("nan")
    row_ids_a = pq.read_table(resumed / "doc_ids.parquet").column(0).to_pylist()
    row_ids_b = pq.read_table(single / "doc_ids.parquet").column(0).to_pylist()
    out = {
        "documents": len(a[0]),
        "same_doc_ids": same_ids,
        "same_terms": bool(same_struct),
        "max_abs_weight_diff": max_diff,
        "same_row_map": row_ids_a == row_ids_b,
    }
    if args.queries:
        queries = read_lines(args.queries)[: args.n_queries]
        enc = load_encoder(args.encoder, **({"device": args.device} if args.device else {}))
        q = enc.encode_queries(queries)
        ia, sa = SeismicIndex.load(resumed / "index").search(q, k=10)
        ib, sb = SeismicIndex.load(single / "index").search(q, k=10)
        out.update(
            {
                "queries": len(queries),
                "same_top10_ids": bool(np.array_equal(ia, ib)),
                "top10_ids_agreement": float((ia == ib).mean()),
                "max_abs_score_diff": float(np.abs(sa - sb).max()),
            }
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--queries", help="one query per line (.txt or .txt.gz), optional")
    ap.add_argument("--encoder", default="splade-tiny")
    ap.add_argument("--work", required=True, help="scratch folder (emptied first)")
    ap.add_argument("--name", default="corpus")
    ap.add_argument("--shard-size", type=int, default=4096)
    ap.add_argument("--kill-after", type=int, default=3, help="complete shards before kill -9")
    ap.add_argument("--device", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--n-queries", type=int, default=2000)
    args = ap.parse_args()

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    resumed, single = work / "resumed", work / "single"
    killed = run_killed(args, resumed)
    second = run_to_end(args, resumed)
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in complete_shards(resumed)}
    kept = [n for n, v in killed["files"].items() if after.get(n) == v]
    first_try = run_to_end(args, single)
    result = {
        "corpus": args.corpus,
        "encoder": args.encoder,
        "device": args.device or "auto",
        "shard_size": args.shard_size,
        "killed_run": {k: v for k, v in killed.items() if k != "files"},
        "shards_untouched_by_resume": len(kept),
        "shards_total": len(after),
        "resume_seconds": second["seconds"],
        "single_run_seconds": first_try["seconds"],
        "comparison": compare(args, resumed, single),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "command": "python " + " ".join(sys.argv),
    }
    if args.device != "cpu":
        try:
            import torch

            if torch.cuda.is_available():
                result["machine"]["gpu"] = torch.cuda.get_device_name(0)
        except ImportError:
            pass
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"index_job_resume_{args.name}.json"
    path.write_text(json.dumps(result, indent=1))
    c = result["comparison"]
    print(f"{'documents':28s} {c['documents']}")
    print(f"{'killed after shards':28s} {killed['shards_complete_at_kill']} of {len(after)}")
    print(f"{'finished shards kept':28s} {len(kept)} (not re-encoded)")
    print(
        f"{'same shards (ids, terms)':28s} {c['same_doc_ids'] and c['same_terms']}, "
        f"max |dw| {c['max_abs_weight_diff']:.3g}"
    )
    print(f"{'same row map':28s} {c['same_row_map']}")
    if "queries" in c:
        print(
            f"{'same top-10 ids':28s} {c['same_top10_ids']} ({c['queries']} queries, "
            f"agreement {c['top10_ids_agreement']:.4f})"
        )
    print(
        f"{'seconds (killed/resume/one)':28s} {killed['seconds']:.1f} / "
        f"{second['seconds']:.1f} / {first_try['seconds']:.1f}"
    )
    print(f"wrote {path}")
    ok = len(kept) == killed["shards_complete_at_kill"] and c["same_doc_ids"] and c["same_terms"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
