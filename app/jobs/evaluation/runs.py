"""TREC run files: ``qid Q0 docid rank score tag``, one line per retrieved document."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

# query id -> {doc id: score}; the shape ir_measures and pytrec_eval take.
Run = dict[str, dict[str, float]]


def hits_to_run(
    query_ids: Sequence[str], rows: np.ndarray, scores: np.ndarray, doc_ids: Sequence[str]
) -> Run:
    """Turn search output into a run.

    ``rows`` (int64, shape (n_queries, k), -1 pads) index into ``doc_ids``; ``scores`` (float32,
    same shape) are the matching scores.
    """
    if rows.shape != scores.shape or rows.shape[0] != len(query_ids):
        raise ValueError(
            f"rows {rows.shape} / scores {scores.shape} do not match {len(query_ids)} queries"
        )
    run: Run = {}
    for qid, row_ids, row_scores in zip(query_ids, rows, scores, strict=True):
        hits = {}
        for row, score in zip(row_ids.tolist(), row_scores.tolist(), strict=True):
            if row >= 0:
                hits[doc_ids[row]] = float(score)
        run[str(qid)] = hits
    return run


def write_trec_run(path: str | Path, run: Run, tag: str = "lsr") -> Path:
    """Write ``run`` in TREC format, documents ranked by descending score (ties by doc id)."""
    if not tag or any(c.isspace() for c in tag):
        raise ValueError(f"run tag must be one word, got {tag!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for qid, hits in run.items():
            ranked = sorted(hits.items(), key=lambda item: (-item[1], item[0]))
            for rank, (doc_id, score) in enumerate(ranked, start=1):
                handle.write(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}\n")
    return path


def read_trec_run(path: str | Path) -> Run:
    """Read a TREC run file back into a run (the rank column is ignored, scores rule)."""
    run: Run = {}
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise ValueError(f"{path}:{line_no}: expected 6 columns, got {len(parts)}")
            qid, _, doc_id, _, score, _ = parts
            run.setdefault(qid, {})[doc_id] = float(score)
    return run
