"""Tiled corpora and the chunked writer (big-ann .csr + lsr-index Parquet shards)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from benchmarks.corpora import (
    Tiling,
    copy_mapping,
    load_real,
    rename_columns,
    top_columns,
    write_corpus,
)
from index.bigann import read_csr


@pytest.fixture(scope="module")
def base(tiny_vectors: Path) -> sp.csr_array:
    return load_real(tiny_vectors, ["a_docs", "b_docs"])


def test_load_real_stacks_prefixes_in_order(tiny_vectors: Path, base: sp.csr_array) -> None:
    a = load_real(tiny_vectors, ["a_docs"])
    assert base.shape == (2200, 30522) and a.shape[0] == 1500
    assert (base[:1500] != a).nnz == 0
    assert base.indices.dtype == np.int32 and base.data.dtype == np.float32


def test_copy_mapping_permutes_only_the_top_columns() -> None:
    top = np.array([5, 9, 2, 7], dtype=np.int32)
    assert np.array_equal(copy_mapping(12, top, 0, seed=1), np.arange(12))
    m1 = copy_mapping(12, top, 1, seed=1)
    rest = np.setdiff1d(np.arange(12), top)
    assert np.array_equal(m1[rest], rest)
    assert sorted(m1[top].tolist()) == sorted(top.tolist())
    assert np.array_equal(m1, copy_mapping(12, top, 1, seed=1))
    maps = {tuple(copy_mapping(12, top, c, seed=1)) for c in range(1, 8)}
    assert len(maps) > 1


def test_top_columns_by_document_frequency(base: sp.csr_array) -> None:
    top = top_columns(base, 50)
    df = np.bincount(base.indices, minlength=base.shape[1])
    assert df[top].min() >= np.delete(df, top).max()


def test_tiling_rows_across_copy_boundaries(base: sp.csr_array) -> None:
    t = Tiling.make(base, copies=3, top_n=200, seed=4, n_docs=5000)
    assert t.n_docs == 5000 and t.full_copies == 2
    assert t.nnz == 2 * base.nnz + base.indptr[600]
    rows = t.rows(2100, 4500)
    m0, m1, m2 = t.mapping(0), t.mapping(1), t.mapping(2)
    want = sp.vstack(
        [rename_columns(base[2100:], m0), rename_columns(base, m1), rename_columns(base[:100], m2)]
    )
    assert rows.shape == want.shape and (rows != sp.csr_array(want)).nnz == 0
    assert rows.has_sorted_indices
    assert not np.array_equal(m1, m2)
    # Copies are not duplicates, but keep each row's weights and lengths.
    copy1 = t.rows(2200, 4400)
    assert (copy1 != base).nnz > 0
    assert np.array_equal(copy1.indptr, base.indptr)
    assert np.allclose(np.sort(copy1.data), np.sort(base.data))
    with pytest.raises(ValueError, match="n_docs"):
        Tiling.make(base, copies=1, top_n=10, seed=0, n_docs=2201)


def test_tiled_queries_are_renamed_like_their_copy(tiny_vectors: Path, base: sp.csr_array) -> None:
    pool = load_real(tiny_vectors, ["a_queries", "b_queries"])
    t = Tiling.make(base, copies=4, top_n=300, seed=2)
    queries, copies = t.queries(pool, 25, seed=3)
    assert queries.shape == (25, 30522) and set(copies.tolist()) <= {0, 1, 2, 3}
    weights = sorted(np.round(queries.data, 3).tolist())
    assert len(weights) == queries.nnz
    # Each query is one pool row with columns renamed by its copy's mapping.
    for i in range(25):
        q = queries[[i]]
        back = np.argsort(t.mapping(int(copies[i])))
        original = rename_columns(q, back.astype(np.int32))
        assert any((original != pool[[j]]).nnz == 0 for j in range(pool.shape[0]))
    with pytest.raises(ValueError, match="pool holds 70"):
        t.queries(pool, 71, seed=0)


def test_write_corpus_csr_and_shards_agree(tmp_path: Path, base: sp.csr_array) -> None:
    t = Tiling.make(base, copies=2, top_n=100, seed=1, n_docs=4000)
    info = write_corpus(t, tmp_path, chunk_rows=1500)
    assert info["n_docs"] == 4000 and info["nnz"] == t.nnz
    assert info["shards"] == [f"shard-00000{i}.parquet" for i in range(3)]
    whole = t.rows(0, 4000)
    csr = read_csr(tmp_path / "docs.csr")
    assert (csr.to_scipy() != whole).nnz == 0
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert manifest == {"format_version": 1, "dim": 30522, "documents": 4000, "shards": 3}
    row = 0
    for name in info["shards"]:
        table = pq.read_table(tmp_path / "shards" / name)
        assert table.schema.field("indices").type.value_type.bit_width == 32
        ids = table.column("doc_id").to_pylist()
        assert ids[0] == str(row)
        columns = (table.column("indices").to_pylist(), table.column("values").to_pylist())
        for i, (cols, vals) in enumerate(zip(*columns, strict=True)):
            want = whole[[row + i]]
            assert cols == want.indices.tolist()
            assert np.array_equal(np.asarray(vals, np.float32), want.data)
        row += table.num_rows
    assert row == 4000
