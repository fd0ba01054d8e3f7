"""Recall as the knob: exact mode, certified answers, and calibrated recall targets.

On the shared SPLADE vectors (``--dataset packages|docstring``), in one process:

1. ``mode="exact"`` against ``exact_search``, both single-threaded and batched over all
   queries (thread CPU time, ``--repeat`` rounds interleaved, the minimum kept), with a
   check that they agree bit for bit;
2. the fraction of queries certified at the default setting (and that every certified
   answer is exact);
3. the index built with ``calibrate=True`` from pseudo-queries only: for each recall
   target, the setting it picks, the Recall@10 measured on the real queries and the mean
   single-thread latency, against the fastest hand-picked setting of the grid (every
   setting the calibration measures, plus exact mode) reaching the same measured recall;
4. how well pseudo-queries predict real ones: calibrated vs real recall per setting.

Prints a table, writes JSON (with the machine record) and a PNG of the calibrated front
against the measured recall (when matplotlib is installed) to ``benchmarks/results/``.

    python benchmarks/bench_recall.py --dataset packages
    python benchmarks/bench_recall.py --dataset docstring --repeat 3
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.machine import describe, machine_info  # noqa: E402
from index import SeismicIndex, exact_search, recall_vs_exact  # noqa: E402
from index.calibration import (  # noqa: E402
    HEAP_FACTORS,
    QUERY_CUTS,
    recall_per_query,
    time_settings,
)
from index.kernels.search import MODE_APPROX, MODE_EXACT  # noqa: E402
from index.pseudo_queries import pseudo_queries  # noqa: E402
from index.settings import QuerySetting  # noqa: E402
from index.validation import as_csr  # noqa: E402
from index.vectors import load_vector_shards  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHARED_VECTORS = Path(__file__).resolve().parents[2] / "shared" / "data" / "vectors"
TARGETS = (0.90, 0.95, 0.99)
K = 10


def label(s: QuerySetting) -> str:
    return "exact" if s.mode == MODE_EXACT else f"({s.query_cut}, {s.heap_factor:g})"


def time_rounds(idx: SeismicIndex, queries, settings: list, repeat: int) -> np.ndarray:
    """Single-thread microseconds per query of each setting: ``repeat`` interleaved rounds
    over all settings, each setting's minimum kept."""
    q = as_csr(queries, name="queries")
    rounds = [time_settings(idx, q, K, settings) for _ in range(repeat)]
    return np.min(rounds, axis=0)


def exact_speed(idx, docs, queries, truth, repeat: int) -> dict:
    """``mode="exact"`` vs ``exact_search``, one thread, whole batch, interleaved."""
    numba.set_num_threads(1)
    exact_search(docs[:100], queries[:2], k=K)  # compile outside the timed calls
    ours, theirs = [], []
    equal = True
    for _ in range(repeat):
        start = time.thread_time()
        ref_ids, ref_scores = exact_search(docs, queries, k=K)
        theirs.append(time.thread_time() - start)
        start = time.thread_time()
        ids, scores = idx.search(queries, k=K, mode="exact")
        ours.append(time.thread_time() - start)
        equal &= bool(np.array_equal(ids, ref_ids) and np.array_equal(scores, ref_scores))
    nq = queries.shape[0]
    return {
        "exact_search_us": min(theirs) / nq * 1e6,
        "mode_exact_us": min(ours) / nq * 1e6,
        "speedup": min(theirs) / min(ours),
        "bit_for_bit_equal": equal and bool(np.array_equal(ids, truth)),
    }


def certification(idx, queries, truth_ids, truth_scores) -> dict:
    ids, scores, certified = idx.search(queries, k=K, certify=True)
    exact = np.all(ids == truth_ids, axis=1) & np.all(scores == truth_scores, axis=1)
    return {
        "certified_fraction": float(certified.mean()),
        "exact_fraction": float(exact.mean()),
        "certified_but_not_exact": int((certified & ~exact).sum()),
        "recall@10": recall_vs_exact(ids, truth_ids),
    }


def pseudo_recall(idx: SeismicIndex, grid: list) -> dict:
    """Recall@10 of every grid setting on the calibration's own pseudo-queries (the
    calibration measures only the settings it explores)."""
    cal = idx.calibration
    queries, source = pseudo_queries(
        idx.arrays.forward, idx.dim, cal.n_queries, seed=cal.seed,
        n_terms=cal.extra["pseudo_terms"],
    )  # fmt: skip
    truth = idx.search(queries, k=K + 1, mode="exact")[0]
    out = {}
    for s in grid:
        found = idx.search(queries, k=K + 1, query_cut=s.query_cut, heap_factor=s.heap_factor)[0]
        out[s] = float(np.nanmean(recall_per_query(found, truth, source, K)))
    return out


def run(args: argparse.Namespace) -> dict:
    docs = load_vector_shards(args.vectors_dir, f"{args.dataset}_docs")
    queries = load_vector_shards(args.vectors_dir, f"{args.dataset}_queries")
    if args.n_queries:
        queries = queries[: args.n_queries]
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    truth_ids, truth_scores = exact_search(docs, queries, k=K)
    SeismicIndex.build(docs[:2000]).calibrate(n_queries=50, n_timed=10)  # compile
    start = time.perf_counter()
    idx = SeismicIndex.build(docs, calibrate=True)
    total = time.perf_counter() - start
    cal = idx.calibration
    print(f"build {idx.build_seconds:.1f} s + calibration {cal.seconds:.1f} s ({total:.1f} s)")
    idx.warm_up()
    speed = exact_speed(idx, docs, queries, truth_ids, args.repeat)
    print(f"mode=exact {speed['mode_exact_us']:.0f} us vs exact_search "
          f"{speed['exact_search_us']:.0f} us: {speed['speedup']:.1f}x")  # fmt: skip
    cert = certification(idx, queries, truth_ids, truth_scores)
    grid = [QuerySetting(MODE_APPROX, qc, hf) for qc in QUERY_CUTS for hf in HEAP_FACTORS]
    picks = [idx.query_setting(recall=t) for t in TARGETS]
    settings = list(dict.fromkeys([*grid, QuerySetting(MODE_EXACT, 1, 0.0), *picks]))
    numba.set_num_threads(1)
    latency = time_rounds(idx, queries, settings, args.repeat)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    measured = {}
    for s, us in zip(settings, latency, strict=True):
        ids = idx.search(queries, k=K, mode="exact")[0] if s.mode == MODE_EXACT else (
            idx.search(queries, k=K, query_cut=s.query_cut, heap_factor=s.heap_factor)[0]
        )  # fmt: skip
        measured[s] = {"recall": recall_vs_exact(ids, truth_ids), "us": float(us)}
    calibrated = {(p.query_cut, p.heap_factor): p for p in cal.points}
    pseudo = pseudo_recall(idx, grid)
    targets = []
    for t, s in zip(TARGETS, picks, strict=True):
        got = measured[s]
        best = min((v["us"], label(g)) for g, v in measured.items() if v["recall"] >= got["recall"])
        point = calibrated.get((s.query_cut, s.heap_factor)) if s.mode == MODE_APPROX else None
        targets.append({
            "target": t,
            "setting": label(s),
            "calibrated_recall": None if point is None else point.recall,
            "measured_recall": got["recall"],
            "meets_target": got["recall"] >= t - 0.01,
            "us": got["us"],
            "fastest_same_recall": best[1],
            "fastest_same_recall_us": best[0],
            "latency_ratio": got["us"] / best[0],
        })  # fmt: skip
    agree = [
        {"setting": label(s), "pseudo": pseudo[s], "real": measured[s]["recall"],
         "real_us": measured[s]["us"], "calibrated": (s.query_cut, s.heap_factor) in calibrated}
        for s in grid
    ]  # fmt: skip
    diff = np.array([a["pseudo"] - a["real"] for a in agree])
    return {
        "dataset": args.dataset,
        "n_docs": int(docs.shape[0]),
        "n_queries": int(queries.shape[0]),
        "build_seconds": idx.build_seconds,
        "calibration_seconds": cal.seconds,
        "exact": speed,
        "certify_default": cert,
        "targets": targets,
        "calibration": cal.to_dict(),
        "pseudo_vs_real": {
            "mean_abs_diff": float(np.abs(diff).mean()),
            "max_over": float(diff.max()),
            "max_under": float(-diff.min()),
            "settings": agree,
        },
        "exact_mode_real": measured[QuerySetting(MODE_EXACT, 1, 0.0)],
        "machine": machine_info(),
        "command": "python benchmarks/bench_recall.py " + " ".join(sys.argv[1:]),
    }


def report(r: dict) -> str:
    e, c = r["exact"], r["certify_default"]
    lines = [
        f"{r['dataset']}: {r['n_docs']} docs, {r['n_queries']} queries; build "
        f"{r['build_seconds']:.1f} s, calibration {r['calibration_seconds']:.1f} s",
        f"exact: mode='exact' {e['mode_exact_us']:.0f} us/query vs exact_search "
        f"{e['exact_search_us']:.0f} us/query single-thread = {e['speedup']:.1f}x faster; "
        f"bit-for-bit equal: {e['bit_for_bit_equal']}",
        f"default (10, 0.8): certified {c['certified_fraction']:.3f}, exact "
        f"{c['exact_fraction']:.3f}, certified but not exact {c['certified_but_not_exact']}",
        "| target | pick | calibrated R@10 | real R@10 | us/query | fastest same recall | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in r["targets"]:
        cal = "-" if t["calibrated_recall"] is None else f"{t['calibrated_recall']:.3f}"
        lines.append(
            f"| {t['target']:.2f} | {t['setting']} | {cal} | {t['measured_recall']:.3f} | "
            f"{t['us']:.0f} | {t['fastest_same_recall']} {t['fastest_same_recall_us']:.0f} | "
            f"{t['latency_ratio']:.2f} |"
        )
    p = r["pseudo_vs_real"]
    lines.append(
        f"pseudo vs real recall over {len(p['settings'])} settings: mean |diff| "
        f"{p['mean_abs_diff']:.3f}, pseudo above real by at most {p['max_over']:.3f}, "
        f"below by at most {p['max_under']:.3f}"
    )
    return "\n".join(lines)


def plot(r: dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    pts = r["pseudo_vs_real"]["settings"]
    ax.scatter([p["real_us"] for p in pts], [p["real"] for p in pts], s=10, c="0.7",
               label="grid, real queries (measured)")  # fmt: skip
    front = r["calibration"]["front"]
    ax.plot([p["cost_us"] for p in front], [p["recall"] for p in front], "o-", ms=3,
            label="calibrated front (pseudo-queries, modelled cost)")  # fmt: skip
    for t in r["targets"]:
        ax.plot(t["us"], t["measured_recall"], "r*", ms=10)
        ax.annotate(f"target {t['target']:.2f}", (t["us"], t["measured_recall"]), fontsize=8)
    ex = r["exact_mode_real"]
    ax.plot(ex["us"], ex["recall"], "ks", label="mode='exact' (measured)")
    ax.set_xlabel("single-thread us / query")
    ax.set_ylabel("Recall@10")
    ax.set_ylim(0.8, 1.005)
    ax.set_title(f"{r['dataset']}: calibrated front vs measured recall")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=["packages", "docstring"], required=True)
    ap.add_argument("--vectors-dir", default=str(SHARED_VECTORS))
    ap.add_argument("--n-queries", type=int, default=None, help="use the first N queries")
    ap.add_argument("--threads", type=int, default=2, help="threads for builds and batches")
    ap.add_argument("--repeat", type=int, default=2, help="timing rounds (minimum kept)")
    ap.add_argument("--out", default=None, help="output stem (default results/recall_NAME)")
    args = ap.parse_args(argv)
    print(f"machine: {describe(machine_info())}")
    result = run(args)
    print(report(result))
    stem = Path(args.out) if args.out else RESULTS / f"recall_{args.dataset}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    print(f"wrote {stem.with_suffix('.json')}")
    if plot(result, stem.with_suffix(".png")):
        print(f"wrote {stem.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
