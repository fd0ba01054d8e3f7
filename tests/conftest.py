"""Shared fixtures: where the read-only shared data lives, skipped cleanly when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED = Path(os.environ.get("LSR_SHARED_DIR", _DEFAULT_SHARED))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ``../shared/data`` folder; tests that need it skip when it is absent."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set LSR_SHARED_DIR)")
    return path
