"""Summaries, the printed table and the plot of ``bench_index.py``'s measured points."""

from __future__ import annotations

from pathlib import Path

# Single-thread summary targets (0.95 and 0.98 are issue 10's acceptance check).
TARGETS = (0.95, 0.96, 0.98)
# big-ann-benchmarks' sparse track ranks systems by all-thread QPS at Recall@10 >= 0.9.
BIGANN_TARGET = 0.9


def fastest(rows: list[dict], system: str, target: float, allthreads: bool) -> dict | None:
    """The row of ``system`` with the lowest latency among those reaching ``target``.

    Single-thread: recall of the one-by-one answers, mean latency. All-thread: recall of
    the batch answers, batch latency per query.
    """
    recall = "recall@10_batch" if allthreads else "recall@10"
    ok = [r for r in rows if r["system"] == system and r[recall] >= target]
    if allthreads:
        return min(ok, key=lambda r: r["latency_allthreads_us_mean"], default=None)
    return min(ok, key=lambda r: r["latency_1thread_us"]["mean"], default=None)


def brief(row: dict | None) -> dict | None:
    """The fields of a point that a summary shows."""
    if row is None:
        return None
    return {
        "query_cut": row["query_cut"],
        "heap_factor": row["heap_factor"],
        "recall@10": row["recall@10"],
        "recall@10_batch": row["recall@10_batch"],
        "latency_1thread_us_mean": row["latency_1thread_us"]["mean"],
        "cpu_1thread_us_mean": row["cpu_1thread_us_mean"],
        "latency_allthreads_us_mean": row["latency_allthreads_us_mean"],
        "qps_allthreads": row["qps_allthreads"],
    }


def summaries(rows: list[dict], systems: list[str]) -> dict:
    """Fastest single-thread and all-thread points per target, and the big-ann metric."""
    return {
        "best_at_recall": {
            str(t): {s: brief(fastest(rows, s, t, allthreads=False)) for s in systems}
            for t in TARGETS
        },
        "best_allthreads_at_recall": {
            str(t): {s: brief(fastest(rows, s, t, allthreads=True)) for s in systems}
            for t in TARGETS
        },
        "bigann_qps_at_recall_0.9": {
            s: brief(fastest(rows, s, BIGANN_TARGET, allthreads=True)) for s in systems
        },
    }


def _cell(best: dict | None, allthreads: bool) -> str:
    if best is None:
        return "-"
    knobs = (
        f"qc {best['query_cut']}, hf {best['heap_factor']}" if best["query_cut"] else "exact mode"
    )
    if allthreads:
        return (
            f"{best['latency_allthreads_us_mean']:.0f} us = {best['qps_allthreads']:,.0f} QPS "
            f"({knobs}, R {best['recall@10_batch']:.3f})"
        )
    return (
        f"{best['latency_1thread_us_mean']:.0f} us, all-t {best['latency_allthreads_us_mean']:.0f}"
        f" ({knobs}, R {best['recall@10']:.3f})"
    )


def format_report(report: dict) -> str:
    """The printed part: builds, one line per point, then the summaries."""
    threads = report["threads"]
    lines = []
    if report.get("exact_search_us_per_query_batched") is not None:
        lines.append(
            f"exact_search (batched, {threads} threads): "
            f"{report['exact_search_us_per_query_batched']:.0f} us/query"
        )
    lines.append(f"ground truth: {report['ground_truth']}")
    for s, v in report["systems"].items():
        lines.append(
            f"{s:10s} build {v['build_seconds']:6.1f} s   index {v['index_bytes'] / 1e6:7.1f} MB"
        )
    lines.append(
        f"\n{'system':10s} {'qc':>3s} {'hf':>4s} {'R@10':>6s} {'1t mean':>8s} {'p50':>7s} "
        f"{'p99':>7s} {'1t cpu':>7s} {'all-t':>7s} {'all-t QPS':>10s}   "
        f"(us/query; min of {report['repeat']} run(s))"
    )
    for r in report["points"]:
        lt = r["latency_1thread_us"]
        lines.append(
            f"{r['system']:10s} {r['query_cut']:3d} {r['heap_factor']:4.2f} "
            f"{r['recall@10']:6.4f} {lt['mean']:8.0f} {lt['p50']:7.0f} {lt['p99']:7.0f} "
            f"{r['cpu_1thread_us_mean']:7.0f} {r['latency_allthreads_us_mean']:7.0f} "
            f"{r['qps_allthreads']:10,.0f}"
        )
    lines.append("\nfastest single-thread point reaching each recall (and its all-thread time):")
    for target, best in report["best_at_recall"].items():
        cells = [f"{s}: {_cell(b, False)}" for s, b in best.items()]
        lines.append(f"  R@10 >= {target}: " + "   ".join(cells))
    lines.append(f"fastest all-thread ({threads} threads) point reaching each recall:")
    for target, best in report["best_allthreads_at_recall"].items():
        cells = [f"{s}: {_cell(b, True)}" for s, b in best.items()]
        lines.append(f"  R@10 >= {target}: " + "   ".join(cells))
    cells = [f"{s}: {_cell(b, True)}" for s, b in report["bigann_qps_at_recall_0.9"].items()]
    lines.append(
        f"big-ann sparse track metric, QPS over {threads} threads at R@10 >= {BIGANN_TARGET}:"
        f"\n  " + "   ".join(cells)
    )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> bool:
    """Recall against single-thread mean latency, one curve per system; False (and no
    file) when matplotlib is not installed (it comes with the ``bench`` extra)."""
    try:
        import matplotlib
    except ImportError:
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for system, style in (("ours", "o-"), ("pyseismic", "s--"), ("ours-exact", "k*")):
        pts = sorted(
            (r["latency_1thread_us"]["mean"], r["recall@10"]) for r in rows if r["system"] == system
        )
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=system)
    ax.set_xlabel("single-thread mean latency (us / query)")
    ax.set_ylabel("Recall@10 vs exact")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
