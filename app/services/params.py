"""Query-time knobs of the index, as one typed value validated once.

Until ``index`` has its own ``QueryParams`` (beside ``BuildParams``), this is the service's:
a collection's defaults (``query_params`` at create) and a request's overrides are both
checked here, merged, and handed to the index as keyword arguments.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from app.errors import InvalidInputError

MAX_QUERY_CUT = 100_000
MAX_HEAP_FACTOR = 1e6


@dataclass(frozen=True)
class QueryParams:
    """``query_cut``: heaviest query terms whose posting lists are walked; ``heap_factor``:
    a block is skipped when its summary score < heap_factor x the heap's minimum. None
    leaves the index's (or the collection's) default."""

    query_cut: int | None = None
    heap_factor: float | None = None

    def __post_init__(self) -> None:
        cut, factor = self.query_cut, self.heap_factor
        if cut is not None and (
            isinstance(cut, bool) or not isinstance(cut, int) or not 1 <= cut <= MAX_QUERY_CUT
        ):
            raise InvalidInputError(f"query_cut must be an integer in [1, {MAX_QUERY_CUT}]")
        if factor is not None and (
            isinstance(factor, bool)
            or not isinstance(factor, int | float)
            or not math.isfinite(factor)
            or not 0 <= factor <= MAX_HEAP_FACTOR
        ):
            raise InvalidInputError(f"heap_factor must be a number in [0, {MAX_HEAP_FACTOR:g}]")

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "query_params") -> QueryParams:
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(raw) - set(names))
        if unknown:
            raise InvalidInputError(f"{where}: unknown {unknown}; use {names}")
        try:
            return cls(**raw)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc.message}") from exc

    def over(self, defaults: QueryParams) -> QueryParams:
        """These values where given, ``defaults`` elsewhere."""
        return QueryParams(
            self.query_cut if self.query_cut is not None else defaults.query_cut,
            self.heap_factor if self.heap_factor is not None else defaults.heap_factor,
        )

    def kwargs(self) -> dict[str, Any]:
        """The given values, as the index's keyword arguments."""
        return {k: v for k, v in asdict(self).items() if v is not None}
