"""What a search did inside each segment, for ``explain``: the setting each indexed segment
ran and the index's own account of the query (``index.SearchExplanation``)."""

from __future__ import annotations

from typing import Any

from app.services.models import SegmentExplanation
from app.storage.collection import Collection
from app.storage.fanout import View, segment_masks
from app.storage.filters import MetadataFilter
from app.storage.plan import EXACT, SearchPlan
from app.storage.segment import EXACT_SUBSET_ROWS
from app.storage.vectors import SparseVector


def segment_explanations(
    view: View,
    coll: Collection,
    query: SparseVector,
    k: int,
    plan: SearchPlan,
    flt: MetadataFilter | None,
) -> list[SegmentExplanation]:
    """Per non-empty segment of ``view``: the setting it runs under ``plan`` and, where the
    search goes through its index, the index's explanation (its ``ids`` are the segment's
    rows; ``doc_ids`` adds their external ids)."""
    out = []
    for _, seg, n_rows, allowed in segment_masks(view, flt):
        n_allowed = n_rows if allowed is None else int(allowed.sum())
        index = seg.index
        if index is None or (flt is not None and n_allowed <= EXACT_SUBSET_ROWS):
            out.append(
                SegmentExplanation(
                    segment=seg.seg_id,
                    kind=coll.segment_kind(seg),
                    rows=n_rows,
                    setting={"mode": EXACT, "index": False},
                )
            )
            continue
        kwargs = plan.index_kwargs(index)
        explained: dict[str, Any] = index.explain(
            query.indices, query.values, k=min(k, n_rows), allowed=allowed, **kwargs
        ).to_dict()
        explained["doc_ids"] = [seg.doc_ids[r] if r >= 0 else None for r in explained["ids"]]
        setting = {
            **plan.setting_of(index),
            "index": True,
            "calibrated": index.calibration is not None,
        }
        if plan.recall is not None:
            setting["recall_target"] = plan.recall
        out.append(
            SegmentExplanation(
                segment=seg.seg_id,
                kind=coll.segment_kind(seg),
                rows=n_rows,
                setting=setting,
                index=explained,
            )
        )
    return out
