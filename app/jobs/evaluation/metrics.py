"""Retrieval metrics through ``ir_measures``: nDCG@10, MRR@10, R@100, R@1000."""

from __future__ import annotations

import ir_measures
from ir_measures import RR, R, nDCG

from app.jobs.evaluation.runs import Run

Qrels = dict[str, dict[str, int]]

# Report name -> ir_measures measure. MRR@10 is ir_measures' RR@10 averaged over queries.
MEASURES = {"nDCG@10": nDCG @ 10, "MRR@10": RR @ 10, "R@100": R @ 100, "R@1000": R @ 1000}


def evaluate_run(qrels: Qrels, run: Run) -> dict[str, float]:
    """Mean of each measure over the judged queries, keyed by report name."""
    if not qrels:
        raise ValueError("no judged queries to evaluate")
    by_measure = ir_measures.calc_aggregate(list(MEASURES.values()), qrels, run)
    return {name: float(by_measure[measure]) for name, measure in MEASURES.items()}
