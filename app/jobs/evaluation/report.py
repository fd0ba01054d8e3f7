"""Evaluation reports: a terminal table, a markdown page and a recall-vs-latency plot."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from app.jobs.evaluation.metrics import MEASURES

logger = logging.getLogger(__name__)

SYSTEMS = ("exact", "index", "bm25")
COLUMNS = (
    *MEASURES,
    "recall_vs_exact@10",
    "latency_mean_ms",
    "latency_p99_ms",
    "batch_ms_per_query",
)


def _fmt(value: Any, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if "ms" in column:
        return f"{value:.3f}"
    return f"{value:.4f}"


def result_rows(result: dict[str, Any], label: str = "") -> list[list[str]]:
    """One row per system present in ``result``: system name, then :data:`COLUMNS`."""
    rows = []
    for system in SYSTEMS:
        if system in result:
            name = f"{label} {system}".strip()
            rows.append([name] + [_fmt(result[system].get(col), col) for col in COLUMNS])
    return rows


def format_table(rows: list[list[str]], header: list[str]) -> str:
    """A plain fixed-width table for the terminal."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def markdown_table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def terminal_table(result: dict[str, Any]) -> str:
    return format_table(result_rows(result), ["system", *COLUMNS])


def plot_recall_latency(details: dict[str, Any], path: Path) -> Path | None:
    """Recall vs exact @10 against mean latency for the sweep; None when matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no plot (pip install matplotlib)")
        return None
    sweep = details.get("sweep") or []
    if not sweep:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    xs = [p["latency_mean_ms"] for p in sweep]
    ys = [p["recall_vs_exact@10"] for p in sweep]
    ax.plot(xs, ys, "o-", label="Seismic index (query_cut, heap_factor)")
    for point, x, y in zip(sweep, xs, ys, strict=True):
        ax.annotate(f"({point['query_cut']}, {point['heap_factor']})", (x, y), fontsize=7,
                    textcoords="offset points", xytext=(4, -8))  # fmt: skip
    exact = details.get("exact", {}).get("latency_mean_ms")
    if exact:
        ax.axvline(exact, color="grey", linestyle="--", label=f"exact search ({exact:.2f} ms)")
    ax.set_xscale("log")
    ax.set_xlabel("mean latency per query, ms (k = 10, one query at a time)")
    ax.set_ylabel("recall vs exact @10")
    meta = details.get("meta", {})
    ax.set_title(f"{meta.get('dataset', '')} / {meta.get('encoder', '')}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(folder: Path, details: dict[str, Any]) -> Path:
    """``report.md`` (+ ``recall_latency.png``) in ``folder``; returns the markdown path."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = details.get("meta", {})
    plot = plot_recall_latency(details, folder / "recall_latency.png")
    lines = [
        f"# Evaluation: {meta.get('dataset', '?')} with {meta.get('encoder', '?')}",
        "",
        f"- source: `{meta.get('source', '?')}`, split `{meta.get('split', '?')}`",
        f"- documents: {meta.get('documents', '?')}, judged queries: "
        f"{meta.get('judged_queries', '?')} (of {meta.get('queries_total', '?')})",
        f"- non-zeros per document: {meta.get('doc_nnz_mean', '?')}, per query: "
        f"{meta.get('query_nnz_mean', '?')}",
        f"- metrics by ir_measures over the runs in `runs/` (k = {meta.get('k', '?')})",
        "- latency_*: one query per call, k = 10, this machine; exact_search transposes the "
        "document matrix on every call, so its per-call latency includes that. "
        f"batch_ms_per_query: the k = {meta.get('k', '?')} batch (all queries, all threads) "
        "divided by the number of queries",
        "",
        markdown_table(result_rows(details), ["system", *COLUMNS]),
        "",
        "## Recall vs latency (Seismic index, k = 10)",
        "",
        markdown_table(
            [
                [
                    str(p["query_cut"]),
                    str(p["heap_factor"]),
                    _fmt(p["recall_vs_exact@10"], ""),
                    _fmt(p["nDCG@10"], ""),
                    _fmt(p["latency_mean_ms"], "latency"),
                    _fmt(p["latency_p99_ms"], "latency"),
                ]
                for p in details.get("sweep", [])
            ],
            ["query_cut", "heap_factor", "recall_vs_exact@10", "nDCG@10", "mean ms", "p99 ms"],
        ),  # fmt: skip
        "",
    ]
    if plot is not None:
        lines += [f"![recall vs latency]({plot.name})", ""]
    stages = details.get("stages_s", {})
    if stages:
        lines += ["## Time per stage (s)", "",
                  markdown_table([[k, f"{v:.2f}"] for k, v in stages.items()], ["stage", "s"]),
                  ""]  # fmt: skip
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path
