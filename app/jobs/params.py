"""Parsing of ``KEY=VALUE`` parameters given on the command line (index and query settings)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def parse_value(text: str) -> Any:
    """``"10"`` -> 10, ``"0.5"`` -> 0.5, ``"true"`` -> True, ``"none"`` -> None, else the text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_params(items: Iterable[str] | None) -> dict[str, Any]:
    """``["n_postings=3500", "alpha=0.4"]`` -> ``{"n_postings": 3500, "alpha": 0.4}``."""
    params: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        params[key] = parse_value(value.strip())
    return params


def parse_sweep(text: str) -> tuple[tuple[int, float], ...]:
    """``"3:0.7,5:0.8"`` -> ((3, 0.7), (5, 0.8)): (query_cut, heap_factor) points."""
    points = []
    for part in text.split(","):
        cut, sep, factor = part.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            points.append((int(cut), float(factor)))
        except ValueError as exc:
            raise ValueError(
                f"sweep points look like 5:0.8 (query_cut:heap_factor), got {part!r}"
            ) from exc
    return tuple(points)
