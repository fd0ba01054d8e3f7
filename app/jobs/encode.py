"""Encoding shared by the batch jobs: one function encodes a whole shard, on every path.

The plain path, the several-GPU path and the Ray actors all call :func:`encode_shard` on the
same shard of texts, so the encoder sees the same texts together, sorts and batches them the
same way (its own length sorting and batch sizing decide, not the job), and the shards come
out bit for bit the same whichever path wrote them.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import sparse


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def load_job_encoder(name: str, device: str | None = None, num_threads: int | None = None) -> Any:
    """``encoders.load_encoder(name)`` for a batch job: on ``device`` when given, and with
    ``num_threads`` torch threads (default: every core this process may use; the encoders
    default to fewer, which suits a busy server). A Ray actor passes the CPUs Ray gave it."""
    from encoders import load_encoder

    options: dict[str, Any] = {"num_threads": num_threads or available_cores()}
    if device and "device" in inspect.signature(load_encoder).parameters:
        options["device"] = device
    return load_encoder(name, **options)


def as_interchange(matrix: Any, n_rows: int, dim: int) -> sparse.csr_array:
    """An encoder's output as a canonical ``csr_array``: sorted columns, int32 / float32."""
    out = sparse.csr_array(matrix)
    if out.shape != (n_rows, dim):
        raise ValueError(f"the encoder returned shape {out.shape}, expected {(n_rows, dim)}")
    out.sort_indices()
    out.indices = out.indices.astype(np.int32, copy=False)
    out.data = out.data.astype(np.float32, copy=False)
    return out


def encode_shard(
    encoder: Any, texts: Sequence[str], batch_size: int | None = None
) -> sparse.csr_array:
    """Encode one shard of documents in one call; rows come back in the input order.

    The whole shard goes to ``encoder.encode_documents``, which sorts by length and sizes
    its own batches (``batch_size`` only when the user asked for one). Returns a
    ``csr_array`` (len(texts), encoder.dim), float32 values, int32 sorted indices.
    """
    dim = int(encoder.dim)
    if not texts:
        return sparse.csr_array((0, dim), dtype=np.float32)
    kwargs = {"batch_size": batch_size} if batch_size else {}
    return as_interchange(encoder.encode_documents(list(texts), **kwargs), len(texts), dim)


def encode_in_chunks(
    encode: Callable[[list[str]], Any],
    texts: Sequence[str],
    dim: int,
    chunk_size: int = 4096,
    on_chunk: Callable[[int], None] | None = None,
) -> sparse.csr_array:
    """``encode`` over consecutive chunks of ``texts`` (for a progress bar), stacked in order.

    Each chunk is one call, so the encoder batches within it as it likes. Returns a
    ``csr_array`` (len(texts), dim), float32 values and int32 indices.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    parts = [sparse.csr_array((0, dim), dtype=np.float32)]
    for start in range(0, len(texts), chunk_size):
        chunk = list(texts[start : start + chunk_size])
        parts.append(as_interchange(encode(chunk), len(chunk), dim))
        if on_chunk is not None:
            on_chunk(len(chunk))
    return as_interchange(sparse.vstack(parts, format="csr"), len(texts), dim)
