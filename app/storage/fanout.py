"""Search over a collection's view: every segment answers, the top-k are merged."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from app.storage.filters import MetadataFilter
from app.storage.plan import SearchPlan
from app.storage.segment import Segment, search_segment
from app.storage.vectors import SparseVector


@dataclass(frozen=True)
class View:
    """A consistent snapshot for readers: segments, visible row counts and live masks."""

    segments: tuple[Segment, ...]
    n_rows: tuple[int, ...]
    live: tuple[np.ndarray | None, ...]  # None: nothing deleted


@dataclass(frozen=True)
class Hit:
    doc_id: str
    score: float
    segment: Segment
    row: int


@dataclass(frozen=True)
class FanoutResult:
    """One search over a view: per query, its hits best first and whether the merged top-k
    is proven exact (every segment's own top-k is: any document of the merged top-k is in
    its segment's top-k, so exact parts merge into the exact whole)."""

    view: View
    hits: list[list[Hit]]
    certified: list[bool]


def search_view(
    view: View,
    queries: Sequence[SparseVector],
    k: int,
    plan: SearchPlan,
    flt: MetadataFilter | None = None,
) -> FanoutResult:
    """Top-``k`` hits per query over every segment of ``view``, best first; equal scores go
    to the earlier segment, then the lower row."""
    per_query: list[list[tuple[np.ndarray, np.ndarray, int]]] = [[] for _ in queries]
    certified = [True] * len(queries)
    for i, seg, n_rows, allowed in segment_masks(view, flt):
        results = search_segment(seg, n_rows, allowed, queries, k, plan, filtered=flt is not None)
        for j, (rows, scores, exact) in enumerate(results):
            certified[j] = certified[j] and exact
            if rows.size:
                per_query[j].append((rows, scores, i))
    hits = [_merge(view, parts, k) for parts in per_query]
    return FanoutResult(view, hits, certified)


def segment_masks(
    view: View, flt: MetadataFilter | None
) -> Iterator[tuple[int, Segment, int, np.ndarray | None]]:
    """Each non-empty segment of ``view``: its position in the view, itself, its visible
    rows and the mask of rows a search may return (tombstones and ``flt``; None: all)."""
    for i, (seg, n_rows, live) in enumerate(
        zip(view.segments, view.n_rows, view.live, strict=True)
    ):
        if n_rows == 0:
            continue
        allowed = None if live is None else live[:n_rows]
        if flt is not None:
            fmask = seg.filter_mask(flt, n_rows)
            allowed = fmask if allowed is None else fmask & allowed
        if allowed is not None and allowed.shape[0] != n_rows:
            allowed = allowed[:n_rows]
        if allowed is not None and not allowed.flags.c_contiguous:
            allowed = np.ascontiguousarray(allowed)
        yield i, seg, n_rows, allowed


def _merge(view: View, parts: list[tuple[np.ndarray, np.ndarray, int]], k: int) -> list[Hit]:
    if not parts:
        return []
    if len(parts) == 1:  # one segment answered: already best first
        rows, scores, i = parts[0]
        seg = view.segments[i]
        return [
            Hit(seg.doc_ids[r], float(s), seg, int(r))
            for r, s in zip(rows[:k].tolist(), scores[:k].tolist(), strict=True)
        ]
    rows = np.concatenate([p[0] for p in parts])
    scores = np.concatenate([p[1] for p in parts])
    which = np.concatenate([np.full(p[0].size, p[2]) for p in parts])
    order = np.lexsort((which, -scores))[:k]
    return [
        Hit(
            view.segments[which[o]].doc_ids[rows[o]],
            float(scores[o]),
            view.segments[which[o]],
            int(rows[o]),
        )
        for o in order
    ]
