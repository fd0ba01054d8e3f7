"""Builds from every input kind equal the in-memory build, bit for bit; damaged inputs are
refused with a message naming the file, never cut."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from index import SeismicIndex, exact_search
from index.bigann import write_csr
from index.sources import BigAnnSource, MatrixSource, ParquetSource
from tests.index.conftest import zipf_splade

EXHAUSTIVE = {"query_cut": 10_000, "heap_factor": 0.0}


def write_shards(matrix: sp.csr_array, folder, rows_per_shard: int, row_group: int) -> list:
    """Parquet shards in ``lsr index``'s layout (doc_id, indices, values)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, start in enumerate(range(0, matrix.shape[0], rows_per_shard)):
        part = sp.csr_array(matrix[start : start + rows_per_shard])
        offsets = pa.array(part.indptr.astype(np.int32))
        table = pa.table(
            {
                "doc_id": [f"d{start + i}" for i in range(part.shape[0])],
                "indices": pa.ListArray.from_arrays(offsets, pa.array(part.indices, pa.int32())),
                "values": pa.ListArray.from_arrays(offsets, pa.array(part.data, pa.float32())),
            }
        )
        path = folder / f"shard-{n:05d}.parquet"
        pq.write_table(table, path, row_group_size=row_group)
        paths.append(path)
    return paths


def assert_same_index(a: SeismicIndex, b: SeismicIndex) -> None:
    assert (a.n_docs, a.dim) == (b.n_docs, b.dim)
    flat_b = b.arrays.flat()
    for name, arr in a.arrays.flat().items():
        assert arr.dtype == flat_b[name].dtype, name
        np.testing.assert_array_equal(arr, flat_b[name], err_msg=name)


@pytest.fixture(scope="module")
def docs() -> sp.csr_array:
    m = zipf_splade(2500, 1500, 30, seed=21)
    m = sp.csr_array(m)
    m.data[::97] = 0.0  # explicit zeros are dropped like any other input's
    empty = sp.csr_array((3, m.shape[1]), dtype=np.float32)
    return sp.csr_array(sp.vstack([m[:1000], empty, m[1000:]], format="csr"))


@pytest.fixture(scope="module")
def reference(docs) -> SeismicIndex:
    return SeismicIndex.build(docs, n_postings=40, seed=3)


def test_chunking_does_not_change_the_index(docs, reference) -> None:
    chunked = SeismicIndex.build_from_source(
        MatrixSource(docs, chunk_nnz=997), n_postings=40, seed=3
    )
    assert_same_index(chunked, reference)


def test_build_from_shards_equals_build(docs, reference, tmp_path) -> None:
    paths = write_shards(docs, tmp_path / "shards", rows_per_shard=700, row_group=256)
    from_shards = SeismicIndex.build_from_shards(paths, dim=docs.shape[1], n_postings=40, seed=3)
    assert_same_index(from_shards, reference)


def test_build_from_shards_streams_to_disk_and_maps(docs, reference, tmp_path) -> None:
    paths = write_shards(docs, tmp_path / "shards", rows_per_shard=900, row_group=300)
    out = tmp_path / "ix"
    index = SeismicIndex.build_from_shards(paths, dim=docs.shape[1], out=out, n_postings=40, seed=3)
    assert not index.arrays.forward.packed.flags.owndata  # memory-mapped from out/
    assert_same_index(index, reference)
    assert_same_index(SeismicIndex.load(out), reference)


@pytest.mark.parametrize("dim", [1500, 70_000])
def test_every_path_is_exhaustive_equals_exact(tmp_path, dim) -> None:
    """With pruning off the index returns exact search's answer, bit for bit, whether it
    was built in memory, from shards, or streamed to disk and memory-mapped."""
    docs = zipf_splade(800, dim, 20, seed=31)
    queries = zipf_splade(25, dim, 8, seed=32)
    truth = exact_search(docs, queries, k=10)
    paths = write_shards(docs, tmp_path / "s", rows_per_shard=300, row_group=100)
    builds = [
        SeismicIndex.build(docs, n_postings=None),
        SeismicIndex.build_from_shards(paths, dim=dim, n_postings=None),
        SeismicIndex.build_from_shards(paths, dim=dim, out=tmp_path / "ix", n_postings=None),
    ]
    for index in builds:
        ids, scores = index.search(queries, k=10, **EXHAUSTIVE)
        np.testing.assert_array_equal(ids, truth[0])
        np.testing.assert_array_equal(scores, truth[1])


def test_bigann_csr_source(docs, reference, tmp_path) -> None:
    path = tmp_path / "base.csr"
    write_csr(path, docs)
    built = SeismicIndex.build_from_source(
        BigAnnSource(path, chunk_nnz=5000), n_postings=40, seed=3
    )
    assert_same_index(built, reference)


def test_truncated_bigann_file_is_refused(docs, tmp_path) -> None:
    path = tmp_path / "base.csr"
    write_csr(path, docs)
    raw = path.read_bytes()
    path.write_bytes(raw[:-10])
    with pytest.raises(ValueError, match="truncated"):
        BigAnnSource(path)
    path.write_bytes(raw[:10])
    with pytest.raises(ValueError, match="truncated header"):
        BigAnnSource(path)


def test_bigann_bad_indptr_or_values_refused(docs, tmp_path) -> None:
    path = tmp_path / "base.csr"
    write_csr(path, docs)
    raw = bytearray(path.read_bytes())
    raw[24 + 8 : 24 + 16] = np.int64(10**9).tobytes()  # indptr[1]
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="indptr"):
        BigAnnSource(path)
    bad = sp.csr_array(docs, copy=True)
    bad.data[5] = np.nan
    write_csr(path, bad)
    with pytest.raises(ValueError, match="NaN"):
        SeismicIndex.build_from_source(BigAnnSource(path))


def test_shards_with_missing_columns_or_damage_refused(docs, tmp_path) -> None:
    paths = write_shards(docs[:100], tmp_path / "s", rows_per_shard=100, row_group=50)
    pq.write_table(pa.table({"doc_id": ["a"]}), tmp_path / "s" / "bad.parquet")
    with pytest.raises(ValueError, match="no column"):
        ParquetSource([*paths, tmp_path / "s" / "bad.parquet"], n_cols=docs.shape[1])
    raw = paths[0].read_bytes()
    paths[0].write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=str(paths[0].name)):
        SeismicIndex.build_from_shards(paths, dim=docs.shape[1])


def test_shard_values_are_validated(docs, tmp_path) -> None:
    bad = sp.csr_array(docs[:50], copy=True)
    bad.data[3] = -1.0
    paths = write_shards(bad, tmp_path / "s", rows_per_shard=50, row_group=50)
    with pytest.raises(ValueError, match="negative"):
        SeismicIndex.build_from_shards(paths, dim=docs.shape[1])
    good = write_shards(docs[:50], tmp_path / "g", rows_per_shard=50, row_group=50)
    with pytest.raises(ValueError, match="column index"):
        SeismicIndex.build_from_shards(good, dim=10)
