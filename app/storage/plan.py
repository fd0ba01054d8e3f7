"""How one search runs on each segment of a view: the approximate search's knobs, a recall
target resolved by each segment's own calibration, or exact mode; and whether to certify."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

APPROX = "approx"
EXACT = "exact"
MODES = (APPROX, EXACT)


@dataclass(frozen=True)
class SearchPlan:
    """What a search asks of every indexed segment (segments without an index are always
    scored exactly).

    knobs: ``query_cut`` / ``heap_factor`` (as ``SeismicIndex.search_vector`` keywords) for
        the approximate search; the index's defaults fill in the rest.
    mode: ``"approx"`` or ``"exact"`` (the index's exact mode: the exact top-k, with early
        termination on block-max bounds).
    recall: a Recall@k target each segment meets through its own calibration (the cheapest
        calibrated setting with the margin); a segment without a calibration is searched
        exactly, which meets any target.
    certify: also ask each segment whether its top-k is proven exact.
    """

    knobs: dict[str, Any] = field(default_factory=dict)
    mode: str = APPROX
    recall: float | None = None
    certify: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        if self.recall is not None and (self.knobs or self.mode != APPROX):
            raise ValueError("a recall target picks the knobs itself (approximate mode only)")

    def index_kwargs(self, index: Any) -> dict[str, Any]:
        """Keyword arguments of ``index.search_vector`` / ``index.explain`` for one
        segment's index (``certify`` apart)."""
        if self.mode == EXACT:
            return {"mode": EXACT}
        if self.recall is not None:
            if getattr(index, "calibration", None) is None:
                return {"mode": EXACT}
            return {"recall": self.recall}
        return dict(self.knobs)

    def runs_exact(self, index: Any) -> bool:
        """Whether a segment's index runs its exact mode under this plan (a recall target
        that no calibrated setting meets does too)."""
        if self.mode == EXACT:
            return True
        if self.recall is None:
            return False
        return self.setting_of(index)["mode"] == EXACT

    def setting_of(self, index: Any) -> dict[str, Any]:
        """The setting a segment's index runs under this plan, for explanations and stats:
        ``{"mode": "exact"}`` or ``{"mode": "approx", "query_cut": .., "heap_factor": ..}``."""
        return describe_setting(index.query_setting(**self.index_kwargs(index)))


def describe_setting(setting: Any) -> dict[str, Any]:
    """An ``index.QuerySetting`` as plain JSON values."""
    from index.settings import MODES as INDEX_MODES

    if setting.mode == INDEX_MODES[EXACT]:
        return {"mode": EXACT}
    return {"mode": APPROX, "query_cut": setting.query_cut, "heap_factor": setting.heap_factor}
