"""Query-time knobs of the index as one typed value, validated once (``BuildParams`` holds
the build-time ones)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

DEFAULT_QUERY_CUT = 10
DEFAULT_HEAP_FACTOR = 0.8
# Visit the blocks of all cut lists in one best-first order (True) or as the Rust Seismic
# does (False): the first list best-first, the others list by list in stored block order.
# At equal (query_cut, heap_factor) the second scores a few more documents and so reaches
# Seismic's recall; both trade recall for documents scored alike.
DEFAULT_GLOBAL_ORDER = False
MAX_QUERY_CUT = 100_000
MAX_HEAP_FACTOR = 1e6


@dataclass(frozen=True)
class QueryParams:
    """How much of the index a query walks (Seismic's names).

    query_cut: the query's heaviest terms whose posting lists are walked (1..100,000).
    heap_factor: a block is skipped when its summary score is below ``heap_factor`` times
        the heap's minimum (finite, >= 0; 0 never skips).
    global_order: walk the blocks of all cut lists in one best-first order instead of the
        Rust Seismic's order.
    """

    query_cut: int = DEFAULT_QUERY_CUT
    heap_factor: float = DEFAULT_HEAP_FACTOR
    global_order: bool = DEFAULT_GLOBAL_ORDER

    def __post_init__(self) -> None:
        cut = self.query_cut
        if (
            isinstance(cut, bool)
            or not isinstance(cut, int | np.integer)
            or not 1 <= int(cut) <= MAX_QUERY_CUT
        ):
            raise ValueError(f"query_cut must be an integer in [1, {MAX_QUERY_CUT}], got {cut!r}")
        factor = self.heap_factor
        if (
            isinstance(factor, bool)
            or not isinstance(factor, int | float)
            or not math.isfinite(factor)
            or not 0 <= factor <= MAX_HEAP_FACTOR
        ):
            raise ValueError(
                f"heap_factor must be a finite number in [0, {MAX_HEAP_FACTOR:g}] "
                f"(0 disables skipping), got {factor!r}"
            )
        if not isinstance(self.global_order, bool):
            raise ValueError(f"global_order must be true or false, got {self.global_order!r}")
        object.__setattr__(self, "query_cut", int(cut))
        object.__setattr__(self, "heap_factor", float(factor))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], base: QueryParams | None = None) -> QueryParams:
        """``base`` (default: the defaults) with the values given in ``raw``; an unknown key
        or a bad value raises ``ValueError`` naming it."""
        if not isinstance(raw, dict):
            raise ValueError(f"query parameters must be an object, got {type(raw).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(raw) - set(names))
        if unknown:
            raise ValueError(f"unknown query parameters {unknown}; known: {names}")
        return replace(base or cls(), **raw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
