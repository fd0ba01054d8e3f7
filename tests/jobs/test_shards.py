"""Parquet shards: lossless round trip, atomic files, and a manifest that guards resumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from app.jobs.errors import JobStateError
from app.jobs.indexing.shards import ShardStore, matrix_to_table, table_to_matrix


def random_csr(rows: int, dim: int, seed: int) -> sparse.csr_array:
    rng = np.random.default_rng(seed)
    dense = rng.random((rows, dim), dtype=np.float32) * (rng.random((rows, dim)) < 0.05)
    if rows > 1:
        dense[1] = 0  # an empty row must survive too
    return sparse.csr_array(dense)


def test_table_round_trip_is_exact() -> None:
    matrix = random_csr(20, 300, seed=1)
    ids = [f"d{i}" for i in range(20)]
    table = matrix_to_table(ids, matrix)
    got_ids, got = table_to_matrix(table, 300)
    assert got_ids == ids
    assert got.dtype == np.float32 and got.indices.dtype == np.int32
    assert (got != matrix).nnz == 0
    # A slice (as Ray hands back) has list offsets that do not start at 0.
    part_ids, part = table_to_matrix(table.slice(5, 7), 300)
    assert part_ids == ids[5:12]
    assert (part != matrix[5:12]).nnz == 0


def test_row_count_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="doc ids"):
        matrix_to_table(["a"], random_csr(3, 10, seed=0))


def test_store_writes_complete_shards_only(tmp_path: Path) -> None:
    store = ShardStore(tmp_path / "shards")
    store.open({"encoder": "e", "shard_size": 4})
    for number in range(3):
        store.write_shard(number, [f"{number}-{i}" for i in range(4)], random_csr(4, 50, number))
    # A crash mid-write leaves only a hidden temporary file; it does not count.
    (store.folder / ".shard-000003.parquet.tmp").write_bytes(b"partial")
    assert store.complete_shards() == [0, 1, 2]
    ids, matrix = store.read_all(50)
    assert len(ids) == 12 and matrix.shape == (12, 50)
    assert not any(p.name.endswith(".tmp") for p in store.folder.iterdir() if "000002" in p.name)


def test_gap_ends_the_complete_prefix(tmp_path: Path) -> None:
    store = ShardStore(tmp_path)
    store.open({"x": 1})
    store.write_shard(0, ["a"], random_csr(1, 5, 0))
    store.write_shard(2, ["c"], random_csr(1, 5, 2))
    assert store.complete_shards() == [0]


def test_other_settings_are_refused_unless_overwrite(tmp_path: Path) -> None:
    store = ShardStore(tmp_path)
    store.open({"encoder": "a"})
    store.write_shard(0, ["a"], random_csr(1, 5, 0))
    assert store.open({"encoder": "a"})["settings"] == {"encoder": "a"}
    assert store.complete_shards() == [0]
    with pytest.raises(JobStateError, match="another job"):
        store.open({"encoder": "b"})
    store.open({"encoder": "b"}, overwrite=True)
    assert store.complete_shards() == []
