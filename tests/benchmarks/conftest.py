"""Tiny seeded stand-ins for the shared vector files (``PREFIX.N.npz`` shards)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

DIM = 30522


def zipf_rows(n_rows: int, mean_nnz: int, seed: int, vocab: int = 3000) -> sp.csr_array:
    """Rows over the first ``vocab`` columns, Zipf-like term frequencies, float16 weights."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1) ** 1.1
    p /= p.sum()
    rows = []
    for _ in range(n_rows):
        n = int(np.clip(rng.poisson(mean_nnz), 2, vocab // 2))
        cols = np.sort(rng.choice(vocab, size=n, replace=False, p=p))
        vals = rng.lognormal(-0.5, 0.6, size=n).astype(np.float16).astype(np.float32)
        rows.append(sp.csr_array((vals, cols, [0, n]), shape=(1, DIM)))
    out = sp.csr_array(sp.vstack(rows, format="csr"))
    out.indices = out.indices.astype(np.int32)
    return out


def write_shards(folder: Path, prefix: str, m: sp.csr_array, per_shard: int) -> None:
    """``m`` as the shared files' layout: lengths uint16, indices uint16, values float16."""
    for n, a in enumerate(range(0, m.shape[0], per_shard)):
        part = m[a : a + per_shard]
        np.savez(
            folder / f"{prefix}.{n}.npz",
            lengths=np.diff(part.indptr).astype(np.uint16),
            indices=part.indices.astype(np.uint16),
            values=part.data.astype(np.float16),
        )


@pytest.fixture(scope="session")
def tiny_vectors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny vector sets, ``a`` (short documents) and ``b`` (longer), with queries."""
    folder = tmp_path_factory.mktemp("vectors")
    write_shards(folder, "a_docs", zipf_rows(1500, 12, seed=1), 1000)
    write_shards(folder, "a_queries", zipf_rows(40, 6, seed=2), 1000)
    write_shards(folder, "b_docs", zipf_rows(700, 40, seed=3), 1000)
    write_shards(folder, "b_queries", zipf_rows(30, 6, seed=4), 1000)
    return folder
