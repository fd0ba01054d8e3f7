"""Query-time knobs as the service takes them: a collection's defaults (``query_params`` at
create) and a request's overrides, both checked by ``index.QueryParams`` and handed to the
index as keyword arguments (those given; the index fills in the rest); recall targets; and
a request's whole :class:`app.storage.plan.SearchPlan`."""

from __future__ import annotations

import math
from typing import Any

from app.errors import InvalidInputError
from app.services.models import SearchRequest
from app.storage.plan import EXACT, MODES, SearchPlan


def checked_query_params(raw: dict[str, Any], where: str = "query_params") -> dict[str, Any]:
    """The given knobs, after ``index.QueryParams`` has accepted them (a 422 names the bad or
    unknown one)."""
    from index import QueryParams

    given = {name: value for name, value in raw.items() if value is not None}
    try:
        QueryParams.from_dict(given)
    except ValueError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None
    return given


def checked_recall(value: float | None, where: str = "recall") -> float | None:
    """A Recall@10 target in (0, 1], or None (a 422 names a bad one)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{where}: must be a number in (0, 1], got {value!r}")
    if not (math.isfinite(value) and 0.0 < value <= 1.0):
        raise InvalidInputError(f"{where}: must be in (0, 1] (e.g. 0.95), got {value!r}")
    return float(value)


def search_plan(
    req: SearchRequest, where: str, defaults: dict[str, Any] | None = None
) -> tuple[SearchPlan, bool]:
    """How a search request runs on each segment, checked: ``(plan, own)``, where ``own``
    says that the request asked for nothing of its own, so the collection's setting (its
    recall controller's, else ``defaults``) is to be filled in by the caller.

    ``recall`` cannot be combined with ``query_cut`` / ``heap_factor`` (it picks them) nor
    with exact mode (recall 1 already); ``exact=True`` is the older spelling of
    ``mode="exact"``.
    """
    if req.mode not in MODES:
        raise InvalidInputError(f"{where}.mode: must be one of {list(MODES)}, got {req.mode!r}")
    if not isinstance(req.certify, bool) or not isinstance(req.exact, bool):
        raise InvalidInputError(f"{where}: certify and exact must be true or false")
    mode = EXACT if req.exact else req.mode
    knobs = checked_query_params(
        {"query_cut": req.query_cut, "heap_factor": req.heap_factor}, where
    )
    recall = checked_recall(req.recall, f"{where}.recall")
    if recall is not None:
        if knobs:
            raise InvalidInputError(
                f"{where}: a recall target picks query_cut and heap_factor itself; give "
                "recall or the knobs, not both"
            )
        if mode == EXACT:
            raise InvalidInputError(
                f"{where}: recall targets are for mode 'approx' (exact mode always has recall 1)"
            )
        return SearchPlan(recall=recall, certify=req.certify), False
    if mode == EXACT:
        return SearchPlan(mode=EXACT, certify=req.certify), False
    if knobs:
        return SearchPlan(knobs={**(defaults or {}), **knobs}, certify=req.certify), False
    return SearchPlan(knobs=dict(defaults or {}), certify=req.certify), True
