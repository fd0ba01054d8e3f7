"""Encoding helpers shared by the batch jobs: length-sorted batches, any ``encoders`` encoder."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import sparse


def load_job_encoder(name: str, device: str | None = None) -> Any:
    """``encoders.load_encoder(name)`` for a batch job: on ``device`` when given, and with
    every CPU core for torch (the encoders default to fewer, which suits a busy server)."""
    from encoders import load_encoder

    options: dict[str, Any] = {"num_threads": os.cpu_count() or 1}
    if device and "device" in inspect.signature(load_encoder).parameters:
        options["device"] = device
    return load_encoder(name, **options)


def batch_size_for(encoder: Any, requested: int | None) -> int:
    """``requested``, else the encoder's own default (larger on a GPU), else 32."""
    return int(requested or getattr(encoder, "batch_size", None) or 32)


def encode_sorted(
    encode: Callable[[list[str]], Any],
    texts: Sequence[str],
    dim: int,
    batch_size: int = 32,
    on_batch: Callable[[int], None] | None = None,
) -> sparse.csr_array:
    """Encode ``texts`` in batches of similar length; rows come back in the input order.

    Sorting by length keeps padding (and so wasted compute) small. ``on_batch`` gets the size
    of each finished batch, for progress bars. Returns a ``csr_array`` (len(texts), dim),
    float32 values and int32 indices.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not texts:
        return sparse.csr_array((0, dim), dtype=np.float32)
    order = np.argsort(np.fromiter((len(t) for t in texts), np.int64, len(texts)), kind="stable")
    parts = []
    for start in range(0, len(order), batch_size):
        batch = [texts[i] for i in order[start : start + batch_size]]
        parts.append(sparse.csr_array(encode(batch)))
        if on_batch is not None:
            on_batch(len(batch))
    stacked = sparse.csr_array(sparse.vstack(parts, format="csr"))
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    matrix = sparse.csr_array(stacked[inverse])
    matrix.sort_indices()
    matrix.indices = matrix.indices.astype(np.int32)
    matrix.data = matrix.data.astype(np.float32)
    return matrix
