"""Fusion of ranked lists from several retrievers (sparse fields, BM25): pure functions.

Each run is one retriever's answer to one query: doc ids in rank order (best first) and their
scores. Two methods:

- reciprocal-rank fusion (Cormack et al. 2009): ``sum_r w_r / (k + rank_r(d))``, ranks from 1,
  ``k = 60``; only the order of each run matters, not its score scale;
- normalised linear: each run's scores min-max scaled to [0, 1] (per query, per run), then
  ``sum_r w_r * norm_r(d)``; a run whose scores are all equal scales them to 1.

A document missing from a run gets nothing from that run. The fused list is sorted by
descending fused score, ties broken by doc id (ascending), so the answer never depends on
dict or set order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

RRF_K = 60
FUSION_METHODS = ("rrf", "linear")

# One retriever's ranked answer to one query: (doc ids best first, their scores).
RankedList = tuple[Sequence[str], Sequence[float]]


@dataclass(frozen=True)
class FusionSpec:
    """How to fuse: ``method`` (rrf | linear), one weight per run (None: all 1), RRF's ``k``."""

    method: str = "rrf"
    weights: tuple[float, ...] | None = None
    rrf_k: int = RRF_K

    def __post_init__(self) -> None:
        if self.method not in FUSION_METHODS:
            raise ValueError(f"fusion method must be one of {FUSION_METHODS}, got {self.method!r}")
        if self.rrf_k < 0:
            raise ValueError(f"rrf k must be >= 0, got {self.rrf_k}")
        if self.weights is not None:
            _check_weights(self.weights)

    def describe(self) -> str:
        weights = ",".join(f"{w:g}" for w in self.weights) if self.weights else "equal"
        return f"{self.method}({weights})"


def _check_weights(weights: Sequence[float]) -> None:
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError(f"fusion weights must be finite and >= 0, got {list(weights)}")
    if not any(w > 0 for w in weights):
        raise ValueError(f"at least one fusion weight must be > 0, got {list(weights)}")


# Fusions selected once, on SciFact's 809 *train* queries (benchmarks/bench_hybrid.py
# --select-on scifact:train; benchmarks/results/hybrid_eval.json), for pairs of the offline
# models: what `lsr eval` fuses those fields with when given neither --fusion nor --select-on,
# and what the service's default collection fuses. Keys are the fields in weight order.
# csr-minilm's was selected again once its codes were normalised (CSRSettings.normalize):
# linear 0.4 / 0.6, 0.7264 on the train queries (0.3 / 0.7: 0.7244), and again once its
# queries were coded at 1,024 latents: linear 0.4 / 0.6 again, 0.7342
# (benchmarks/results/hybrid_eval_rerank.json).
SELECTED_FUSIONS: dict[tuple[str, ...], FusionSpec] = {
    ("splade-tiny", "bm25"): FusionSpec("linear", (0.3, 0.7)),
    ("csr-minilm", "bm25"): FusionSpec("linear", (0.4, 0.6)),
}


# The dense cosine's share in the re-rank score, ``(1 - w) minmax(fused) + w minmax(cosine)``
# over the fused top 100, selected once per pair of offline models on SciFact's 809 *train*
# queries, each pair fused as SELECTED_FUSIONS says (grid 0, 0.1, ..., 1; nDCG@10 at 0 / the
# pick / 1, the cosine alone: splade-tiny + bm25 0.711 / 0.744 at 0.5 / 0.676, csr-minilm
# (normalised codes, queries at 1,024 latents) + bm25 0.734 / 0.735 at 0.2 / 0.662;
# benchmarks/bench_hybrid.py --rerank dense, benchmarks/results/hybrid_eval_rerank.json). What
# ``--rerank dense`` uses without ``--rerank-weight`` or ``--select-on``, and the service's
# re-rank without a weight; other fields get an equal share, 0.5.
SELECTED_RERANK_WEIGHTS: dict[tuple[str, ...], float] = {
    ("splade-tiny", "bm25"): 0.5,
    ("csr-minilm", "bm25"): 0.2,
}
RERANK_DENSE_WEIGHT = 0.5


def default_rerank_weight(encoders: tuple[str, ...]) -> float:
    """The dense share selected for these fields (in any order), else an equal share."""
    for fields, weight in SELECTED_RERANK_WEIGHTS.items():
        if sorted(fields) == sorted(encoders):
            return weight
    return RERANK_DENSE_WEIGHT


def rerank(
    ids: Sequence[str], fused: Sequence[float], cosines: Sequence[float], weight: float
) -> list[tuple[str, float]]:
    """Candidates ``ids`` re-scored ``(1 - weight) minmax(fused) + weight minmax(cosines)``,
    the normalised linear fusion of the two lists (weight 1: the cosine alone), best first."""
    spec = FusionSpec("linear", (round(1.0 - weight, 6), weight))
    return fuse([(ids, fused), (ids, cosines)], spec, None)


def _weights_for(runs: Sequence[RankedList], weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * len(runs)
    if len(weights) != len(runs):
        raise ValueError(f"{len(weights)} fusion weights for {len(runs)} runs")
    _check_weights(weights)
    return [float(w) for w in weights]


def _check_run(ids: Sequence[str], scores: Sequence[float]) -> None:
    if len(ids) != len(scores):
        raise ValueError(f"a run has {len(ids)} ids but {len(scores)} scores")
    if len(set(ids)) != len(ids):
        raise ValueError("a run lists the same doc id twice")


def _ranked(fused: dict[str, float], depth: int | None) -> list[tuple[str, float]]:
    out = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
    return out if depth is None else out[:depth]


def reciprocal_rank_fusion(
    runs: Sequence[RankedList],
    weights: Sequence[float] | None = None,
    k: int = RRF_K,
    depth: int | None = None,
) -> list[tuple[str, float]]:
    """``sum_r w_r / (k + rank)`` per doc over ``runs`` (each best first, rank 1 = first);
    the top ``depth`` (None: all) as (doc id, fused score), best first, ties by doc id."""
    if k < 0:
        raise ValueError(f"rrf k must be >= 0, got {k}")
    fused: dict[str, float] = {}
    for (ids, scores), weight in zip(runs, _weights_for(runs, weights), strict=True):
        _check_run(ids, scores)
        for rank, doc_id in enumerate(ids, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + weight / (k + rank)
    return _ranked(fused, depth)


def min_max(scores: Sequence[float]) -> list[float]:
    """Scores scaled to [0, 1] by the run's own min and max; all 1.0 when they are all equal."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high == low:
        return [1.0] * len(scores)
    return [(float(s) - low) / (high - low) for s in scores]


def linear_fusion(
    runs: Sequence[RankedList],
    weights: Sequence[float] | None = None,
    depth: int | None = None,
) -> list[tuple[str, float]]:
    """``sum_r w_r * minmax_r(score)`` per doc over ``runs``; the top ``depth`` (None: all) as
    (doc id, fused score), best first, ties by doc id."""
    fused: dict[str, float] = {}
    for (ids, scores), weight in zip(runs, _weights_for(runs, weights), strict=True):
        _check_run(ids, scores)
        for doc_id, norm in zip(ids, min_max(scores), strict=True):
            fused[doc_id] = fused.get(doc_id, 0.0) + weight * norm
    return _ranked(fused, depth)


def fuse(
    runs: Sequence[RankedList], spec: FusionSpec, depth: int | None = None
) -> list[tuple[str, float]]:
    """Fuse ``runs`` as ``spec`` says: :func:`reciprocal_rank_fusion` or :func:`linear_fusion`."""
    if spec.method == "rrf":
        return reciprocal_rank_fusion(runs, spec.weights, spec.rrf_k, depth)
    return linear_fusion(runs, spec.weights, depth)
