"""Reader for the shared SPLADE vector shards (``PREFIX.N.npz``: ``lengths`` uint16,
``indices`` uint16, ``values`` float16, rows concatenated in shard order)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp

VOCAB_SIZE = 30522


def load_vector_shards(
    directory: str | os.PathLike, prefix: str, dim: int = VOCAB_SIZE
) -> sp.csr_array:
    """Concatenate ``directory/prefix.N.npz`` (N = 0, 1, ...) into one CSR matrix
    (float32 values, int32 indices), shape (rows, ``dim``)."""
    root = Path(directory)
    pattern = re.compile(rf"^{re.escape(prefix)}\.(\d+)\.npz$")
    shards = sorted((int(m.group(1)), p) for p in root.iterdir() if (m := pattern.match(p.name)))
    if not shards:
        raise ValueError(f"no shards {prefix}.N.npz in {root}")
    if [n for n, _ in shards] != list(range(len(shards))):
        raise ValueError(f"shards of {prefix} are not numbered 0..{len(shards) - 1}")
    lengths, indices, values = [], [], []
    for _, path in shards:
        with np.load(path) as z:
            lengths.append(z["lengths"].astype(np.int64))
            indices.append(z["indices"].astype(np.int32))
            values.append(z["values"].astype(np.float32))
    lens = np.concatenate(lengths)
    indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    idx = np.concatenate(indices)
    val = np.concatenate(values)
    if indptr[-1] != idx.shape[0] or idx.shape != val.shape:
        raise ValueError(f"shards of {prefix}: lengths do not add up to the stored entries")
    return sp.csr_array((val, idx, indptr), shape=(lens.shape[0], dim))
