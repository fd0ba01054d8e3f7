"""What one search runs: the approximate search's knobs, a recall target resolved through
the calibration, or exact mode."""

from __future__ import annotations

from dataclasses import dataclass

from index.calibration import Calibration
from index.kernels.search import MODE_APPROX, MODE_EXACT
from index.params import DEFAULT_HEAP_FACTOR, DEFAULT_QUERY_CUT, QueryParams
from index.validation import check_recall

MODES = {"approx": MODE_APPROX, "exact": MODE_EXACT}
DEFAULT_PARAMS = QueryParams()


@dataclass(frozen=True)
class QuerySetting:
    """What one search call runs: ``mode`` (``MODE_APPROX`` / ``MODE_EXACT``) and, for
    the approximate search, ``query_cut``, ``heap_factor`` and ``global_order``."""

    mode: int
    query_cut: int
    heap_factor: float
    global_order: bool = False


def query_params(
    params: QueryParams | None,
    query_cut: int | None,
    heap_factor: float | None,
    global_order: bool | None,
) -> QueryParams:
    """``params`` (default: the defaults) with any knob given by keyword on top."""
    if params is not None and not isinstance(params, QueryParams):
        raise ValueError(f"params must be an index.QueryParams, got {type(params).__name__}")
    given = {
        name: value
        for name, value in (
            ("query_cut", query_cut),
            ("heap_factor", heap_factor),
            ("global_order", global_order),
        )
        if value is not None
    }
    base = params or DEFAULT_PARAMS
    return QueryParams.from_dict(given, base) if given else base


def resolve_setting(
    calibration: Calibration | None,
    query_cut: int | None = None,
    heap_factor: float | None = None,
    global_order: bool | None = None,
    params: QueryParams | None = None,
    recall: float | None = None,
    mode: str = "approx",
) -> QuerySetting:
    """Validate one search's arguments into a :class:`QuerySetting`: the knobs come from
    ``params`` (default: the defaults) with any keyword on top; a ``recall`` target picks
    them from ``calibration`` instead (exact mode when no calibrated setting meets it)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    if recall is None:
        qp = query_params(params, query_cut, heap_factor, global_order)
        return QuerySetting(MODES[mode], qp.query_cut, qp.heap_factor, qp.global_order)
    if query_cut is not None or heap_factor is not None or params is not None:
        raise ValueError(
            "recall picks query_cut and heap_factor itself: give a recall target or the "
            "knobs, not both"
        )
    if mode != "approx" or global_order:
        raise ValueError("recall targets are calibrated for mode='approx' in Seismic order")
    target = check_recall(recall)
    if calibration is None:
        raise ValueError(
            "this index has no calibration: build it with calibrate=True or call "
            "idx.calibrate() before searching with recall="
        )
    point = calibration.pick(target)
    if point is None:
        return QuerySetting(MODE_EXACT, DEFAULT_QUERY_CUT, DEFAULT_HEAP_FACTOR)
    return QuerySetting(MODE_APPROX, point.query_cut, point.heap_factor)
