"""Metadata filters: equality and ``in`` on top-level fields, as row masks per segment.

A filter is ``{"field": value}`` (equality) or ``{"field": {"in": [v1, v2]}}`` (or ``{"eq": v}``);
several fields must all match. Values are JSON scalars (string, number, bool, null).
Masks are exact: how they meet the approximate index is decided in :mod:`app.storage.segment`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.errors import InvalidInputError

MAX_FILTER_VALUES = 1024


def _canon(value: Any, where: str) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value is not None and not isinstance(value, str | int | float | bool):
        raise InvalidInputError(
            f"{where}: filter values must be strings, numbers, booleans or null"
        )
    return json.dumps(value)


@dataclass(frozen=True)
class MetadataFilter:
    """Conjunction over fields; each field's value must be one of ``clauses[field]``."""

    clauses: tuple[tuple[str, frozenset[str]], ...]

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> MetadataFilter | None:
        if not raw:
            return None
        clauses = []
        for name, cond in raw.items():
            where = f"filter.{name}"
            if isinstance(cond, dict):
                if len(cond) != 1 or next(iter(cond)) not in ("in", "eq"):
                    raise InvalidInputError(f"{where}: use a value, {{'eq': v}} or {{'in': [..]}}")
                op, arg = next(iter(cond.items()))
                if op == "in":
                    if not isinstance(arg, list) or not arg or len(arg) > MAX_FILTER_VALUES:
                        raise InvalidInputError(
                            f"{where}.in: a non-empty list of at most {MAX_FILTER_VALUES} values"
                        )
                    values = frozenset(_canon(v, where) for v in arg)
                else:
                    values = frozenset([_canon(arg, where)])
            else:
                values = frozenset([_canon(cond, where)])
            clauses.append((name, values))
        return cls(tuple(clauses))

    def matches(self, metadata: dict[str, Any] | None) -> bool:
        if metadata is None:
            metadata = {}
        for name, values in self.clauses:
            value = metadata.get(name)
            if isinstance(value, dict | list):
                return False
            try:
                if _canon(value, name) not in values:
                    return False
            except InvalidInputError:
                return False
        return True


class FieldIndex:
    """Lazily built ``field -> canonical value -> rows`` map over an immutable segment."""

    def __init__(self, n_rows: int, metadata_at: Callable[[int], dict[str, Any] | None]) -> None:
        self._n_rows = n_rows
        self._metadata_at = metadata_at
        self._fields: dict[str, dict[str, np.ndarray]] | None = None
        self._lock = threading.Lock()

    def _build(self) -> dict[str, dict[str, list[int]]]:
        fields: dict[str, dict[str, list[int]]] = {}
        for row in range(self._n_rows):
            meta = self._metadata_at(row)
            if not meta:
                continue
            for name, value in meta.items():
                if isinstance(value, dict | list):
                    fields.setdefault(name, {}).setdefault("\x00", []).append(row)
                    continue
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                fields.setdefault(name, {}).setdefault(json.dumps(value), []).append(row)
        return fields

    def mask(self, flt: MetadataFilter) -> np.ndarray:
        """``(n_rows,)`` bool: rows whose metadata passes ``flt``."""
        with self._lock:
            if self._fields is None:
                built = self._build()
                self._fields = {
                    f: {v: np.asarray(rows, np.int64) for v, rows in vals.items()}
                    for f, vals in built.items()
                }
        out = np.ones(self._n_rows, bool)
        for name, values in flt.clauses:
            field_mask = np.zeros(self._n_rows, bool)
            by_value = self._fields.get(name, {})
            for v in values:
                if v in by_value:
                    field_mask[by_value[v]] = True
            if "null" in values:  # a missing field counts as null
                present = np.zeros(self._n_rows, bool)
                for rows in by_value.values():
                    present[rows] = True
                field_mask |= ~present
            out &= field_mask
        return out


def scan_mask(metadata: Sequence[dict[str, Any] | None], flt: MetadataFilter) -> np.ndarray:
    """The same mask by a plain scan (small mutable segments)."""
    return np.fromiter((flt.matches(m) for m in metadata), dtype=bool, count=len(metadata))
