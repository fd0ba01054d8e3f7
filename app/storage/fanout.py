"""Search over a collection's view: every segment answers, the top-k are merged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.storage.filters import MetadataFilter
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


def search_view(
    view: View,
    queries: Sequence[SparseVector],
    k: int,
    params: dict[str, Any],
    flt: MetadataFilter | None = None,
    exact: bool = False,
) -> list[list[Hit]]:
    """Top-``k`` hits per query over every segment of ``view``, best first; equal scores go
    to the earlier segment, then the lower row."""
    per_query: list[list[tuple[np.ndarray, np.ndarray, int]]] = [[] for _ in queries]
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
        results = search_segment(
            seg, n_rows, allowed, queries, k, params, filtered=flt is not None, exact=exact
        )
        for j, (rows, scores) in enumerate(results):
            if rows.size:
                per_query[j].append((rows, scores, i))
    return [_merge(view, parts, k) for parts in per_query]


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
