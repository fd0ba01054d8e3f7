"""What one search did inside the index, for a service's ``explain``: the lists walked and
left out, blocks visited and skipped, documents scored, the heap threshold, and the
certification bound on every document the search did not score."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from index.kernels.scratch import (
    STAT_BLOCKS,
    STAT_DOCS,
    STAT_PAIRS,
    STAT_RANGES,
    STAT_SUMMARIES,
    STAT_VERIFIED,
)
from index.kernels.search import CERTIFY_EXPLAIN, MODE_EXACT

if TYPE_CHECKING:
    from index.seismic import SeismicIndex
    from index.settings import QuerySetting


@dataclass(frozen=True)
class SearchExplanation:
    """One query's search, from the inside.

    mode: ``"approx"`` or ``"exact"``; query_cut / heap_factor: the approximate search's
        knobs (None in exact mode).
    lists_walked: term ids whose posting lists were walked (the ``query_cut`` heaviest
        query terms, heaviest first); lists_skipped: the query's other terms.
    blocks_scored: blocks whose summaries were scored; blocks_visited: those whose
        documents were scored; blocks_skipped: the difference (summary below
        ``heap_factor`` times the heap threshold).
    docs_scored: documents scored exactly from the forward index (in exact mode: every
        document of the ranges scored).
    threshold: the k-th best score (the heap minimum at the end), None with fewer hits.
    certified: whether the answer is proven exact (None: the index has no bounds).
    unscored_bound: no document the search left unscored scores above this (None
        without bounds); certified answers have it below the threshold, or equal with
        only higher rows.
    ranges_checked: block-max ranges whose bound reached the threshold (their unscored
        documents were scored to certify, ``docs_verified`` of them) or, in exact mode,
        ranges scored; bound_pairs: (term, range) bounds read.
    ids, scores: the answer.
    """

    k: int
    mode: str
    query_cut: int | None
    heap_factor: float | None
    query_terms: int
    lists_walked: list[int]
    lists_skipped: list[int]
    blocks_scored: int
    blocks_visited: int
    blocks_skipped: int
    docs_scored: int
    threshold: float | None
    certified: bool | None
    unscored_bound: float | None
    ranges_checked: int
    docs_verified: int
    bound_pairs: int
    ids: list[int]
    scores: list[float]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)


def explain_query(
    index: SeismicIndex,
    terms: np.ndarray,
    values: np.ndarray,
    k: int,
    setting: QuerySetting,
    allowed: np.ndarray,
) -> SearchExplanation:
    """Run one validated query (``terms`` int32 ascending, ``values`` float32 > 0) with
    full certification and read the kernel's counters back."""
    indptr = np.array([0, terms.shape[0]], dtype=np.int64)
    rows, scores, cert, stats = index._search_arrays(
        indptr, terms, values, k, setting, allowed, CERTIFY_EXPLAIN
    )
    exact = setting.mode == MODE_EXACT
    order = np.argsort(-values, kind="mergesort")
    cut = 0 if exact else min(setting.query_cut, terms.shape[0])
    hits = int((rows[0] >= 0).sum())
    threshold = float(scores[0, k - 1]) if hits == k else None
    certified: bool | None
    bound: float | None
    if exact:
        certified, bound = True, None
    elif index.can_certify:
        certified, bound = bool(cert[0, 0] > 0.5), float(cert[0, 1])
    else:
        certified, bound = None, None
    return SearchExplanation(
        k=k,
        mode="exact" if exact else "approx",
        query_cut=None if exact else setting.query_cut,
        heap_factor=None if exact else setting.heap_factor,
        query_terms=int(terms.shape[0]),
        lists_walked=[int(t) for t in terms[order[:cut]]],
        lists_skipped=[int(t) for t in terms[order[cut:]]],
        blocks_scored=int(stats[STAT_SUMMARIES]),
        blocks_visited=int(stats[STAT_BLOCKS]),
        blocks_skipped=int(stats[STAT_SUMMARIES] - stats[STAT_BLOCKS]),
        docs_scored=int(stats[STAT_DOCS]),
        threshold=threshold,
        certified=certified,
        unscored_bound=bound,
        ranges_checked=int(stats[STAT_RANGES]),
        docs_verified=int(stats[STAT_VERIFIED]),
        bound_pairs=int(stats[STAT_PAIRS]),
        ids=[int(r) for r in rows[0]],
        scores=[float(s) for s in scores[0]],
    )
