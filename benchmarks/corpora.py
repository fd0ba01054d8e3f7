"""Large sparse corpora for build benchmarks, made chunk by chunk from the shared vectors.

Tiled real vectors: the shared splade-tiny documents repeated ``copies`` times; copy ``c``
(c >= 1; copy 0 is the original) renames the ``top_n`` most frequent columns (by document
frequency, ties to the lower id) with its own seeded permutation of them, so copies are
not duplicates but keep the real length, weight and co-occurrence statistics.

The generated corpus fitted to real vectors lives in ``benchmarks/fitted.py``; both are
written here chunk by chunk as a big-ann ``.csr`` file and ``lsr index``-style Parquet
shards, never holding the whole matrix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from benchmarks.fitted import Generated
from index.bigann import CsrWriter
from index.vectors import load_vector_shards

VOCAB = 30522
# The Parquet layout ``lsr index`` writes (app/jobs/shards.py): one row per document.
SHARD_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("indices", pa.list_(pa.int32())),
        ("values", pa.list_(pa.float32())),
    ]
)


def load_real(vectors_dir: str | os.PathLike, prefixes: list[str]) -> sp.csr_array:
    """The shared vector files ``PREFIX.N.npz`` of each prefix, stacked in the given order."""
    parts = [load_vector_shards(vectors_dir, p) for p in prefixes]
    out = sp.csr_array(sp.vstack(parts, format="csr"))
    out.indices = out.indices.astype(np.int32)
    out.indptr = out.indptr.astype(np.int64)
    return out


def document_frequency(docs: sp.csr_array) -> np.ndarray:
    """int64 (dim,): documents holding each column."""
    return np.bincount(docs.indices, minlength=docs.shape[1]).astype(np.int64)


# ---------------------------------------------------------------------- tiled
def top_columns(docs: sp.csr_array, top_n: int) -> np.ndarray:
    """int32 (top_n,): the most frequent columns, ties to the lower id."""
    df = document_frequency(docs)
    return np.argsort(-df, kind="stable")[:top_n].astype(np.int32)


def copy_mapping(dim: int, top: np.ndarray, copy: int, seed: int) -> np.ndarray:
    """int32 (dim,) column renaming of copy ``copy``: identity for copy 0, else a seeded
    permutation of the ``top`` columns among themselves (other columns unchanged)."""
    mapping = np.arange(dim, dtype=np.int32)
    if copy:
        rng = np.random.default_rng([seed, copy])
        mapping[top] = top[rng.permutation(top.shape[0])]
    return mapping


def rename_columns(chunk: sp.csr_array, mapping: np.ndarray) -> sp.csr_array:
    """``chunk`` with every column id ``c`` renamed ``mapping[c]``, rows re-sorted."""
    out = sp.csr_array(
        (chunk.data.astype(np.float32), mapping[chunk.indices], chunk.indptr.astype(np.int64)),
        shape=chunk.shape,
    )
    out.has_sorted_indices = False
    out.sort_indices()
    return out


@dataclass
class Tiling:
    """``copies`` renamed copies of ``base`` (the first ``n_docs`` rows of them)."""

    base: sp.csr_array
    copies: int
    top: np.ndarray
    seed: int
    n_docs: int

    @classmethod
    def make(
        cls, base: sp.csr_array, copies: int, top_n: int, seed: int, n_docs: int | None = None
    ) -> Tiling:
        total = base.shape[0] * copies
        n_docs = total if n_docs is None else n_docs
        if not 0 < n_docs <= total:
            raise ValueError(f"n_docs must lie in [1, {total}] for {copies} copies")
        return cls(base, copies, top_columns(base, top_n), seed, n_docs)

    @property
    def dim(self) -> int:
        return int(self.base.shape[1])

    @property
    def nnz(self) -> int:
        full, rest = divmod(self.n_docs, self.base.shape[0])
        return full * int(self.base.nnz) + int(self.base.indptr[rest])

    @property
    def full_copies(self) -> int:
        return self.n_docs // self.base.shape[0]

    def mapping(self, copy: int) -> np.ndarray:
        return copy_mapping(self.dim, self.top, copy, self.seed)

    def rows(self, start: int, stop: int) -> sp.csr_array:
        """Rows ``[start, stop)`` of the tiled corpus."""
        n, parts = self.base.shape[0], []
        row = start
        while row < stop:
            copy, offset = divmod(row, n)
            end = min(stop, (copy + 1) * n)
            piece = self.base[offset : offset + end - row]
            parts.append(rename_columns(piece, self.mapping(copy)))
            row = end
        out = sp.csr_array(sp.vstack(parts, format="csr"))
        out.indices = out.indices.astype(np.int32)
        return out

    def queries(self, pool: sp.csr_array, n: int, seed: int) -> tuple[sp.csr_array, np.ndarray]:
        """``n`` held-out real queries (seeded choice), each renamed like a random complete
        copy; returns (queries, the copy of each)."""
        if n > pool.shape[0]:
            raise ValueError(f"{n} queries asked, the pool holds {pool.shape[0]}")
        rng = np.random.default_rng([seed, 1 << 20])
        chosen = np.sort(rng.choice(pool.shape[0], size=n, replace=False))
        copies = rng.integers(0, max(1, self.full_copies), size=n)
        maps = {int(c): self.mapping(int(c)) for c in np.unique(copies)}
        rows = [
            rename_columns(pool[[int(i)]], maps[int(c)])
            for i, c in zip(chosen, copies, strict=True)
        ]
        out = sp.csr_array(sp.vstack(rows, format="csr"))
        out.indices = out.indices.astype(np.int32)
        return out, copies


# -------------------------------------------------------------------- writing
def shard_table(chunk: sp.csr_array, first_row: int) -> pa.Table:
    """One Parquet shard in ``lsr index``'s layout; doc ids are the global row numbers."""
    offsets = pa.array(np.asarray(chunk.indptr - chunk.indptr[0], dtype=np.int32))
    return pa.Table.from_arrays(
        [
            pa.array([str(first_row + i) for i in range(chunk.shape[0])], pa.string()),
            pa.ListArray.from_arrays(offsets, pa.array(chunk.indices.astype(np.int32))),
            pa.ListArray.from_arrays(offsets, pa.array(chunk.data.astype(np.float32))),
        ],
        schema=SHARD_SCHEMA,
    )


def write_corpus(
    source: Tiling | Generated, out: Path, chunk_rows: int, parquet: bool = True
) -> dict:
    """Write ``out/docs.csr`` and (``parquet``) ``out/shards/shard-NNNNNN.parquet`` plus
    ``manifest.json``, chunk by chunk; returns what was written."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    shards = out / "shards"
    if parquet:
        shards.mkdir(exist_ok=True)
    n, paths = source.n_docs, []
    with CsrWriter(out / "docs.csr", n, source.dim, source.nnz) as writer:
        for number, start in enumerate(tqdm(range(0, n, chunk_rows), desc="chunks", unit="chunk")):
            chunk = source.rows(start, min(n, start + chunk_rows))
            writer.append(chunk)
            if parquet:
                path = shards / f"shard-{number:06d}.parquet"
                pq.write_table(shard_table(chunk, start), path, compression="zstd")
                paths.append(path.name)
    if parquet:
        manifest = {"format_version": 1, "dim": source.dim, "documents": n, "shards": len(paths)}
        (shards / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return {"docs_csr": "docs.csr", "shards": paths, "n_docs": n, "nnz": source.nnz}
