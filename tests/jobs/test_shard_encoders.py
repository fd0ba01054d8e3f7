"""Shard encoders: every path writes the plain path's shards, byte for byte."""

from __future__ import annotations

from pathlib import Path

from app.jobs.encode import available_cores
from app.jobs.indexing.job import IndexJobConfig, run_index_job
from app.jobs.indexing.shard_encoders import gpu_devices, pick_devices
from tests.jobs.conftest import packages_job, shard_bytes


def test_one_worker_per_device_writes_the_plain_shards(
    shared_data: Path, splade_tiny, tmp_path: Path
) -> None:
    """The several-device path (one worker thread per device), run on two CPU 'devices'."""
    common = packages_job(shared_data, limit=70, shard_size=20)
    run_index_job(IndexJobConfig(out=tmp_path / "plain", **common), encoder=splade_tiny)
    pooled = run_index_job(IndexJobConfig(out=tmp_path / "pool", device="cpu,cpu", **common))
    assert pooled.complete and pooled.shards_total == 4
    assert shard_bytes(tmp_path / "plain") == shard_bytes(tmp_path / "pool")


def test_devices_by_default_and_as_given() -> None:
    cores = available_cores()
    assert pick_devices("cuda:0, cuda:1") == ["cuda:0", "cuda:1"]
    assert pick_devices("cuda:1") == ["cuda:1"]
    assert pick_devices("cpu") == ["cpu"] * cores  # one one-thread worker per core
    assert pick_devices(None) == (gpu_devices() or ["cpu"] * cores)


def test_cpu_shards_do_not_depend_on_the_number_of_workers(
    shared_data: Path, splade_tiny, tmp_path: Path
) -> None:
    """Torch on one thread per worker: the floats of a shard are the same with 1 or 3
    workers (with 1 vs 2 intra-op threads they are not, in the last bits)."""
    common = packages_job(shared_data, limit=90, shard_size=30)
    run_index_job(IndexJobConfig(out=tmp_path / "one", device="cpu", **common))
    run_index_job(IndexJobConfig(out=tmp_path / "three", device="cpu,cpu,cpu", **common))
    assert shard_bytes(tmp_path / "one") == shard_bytes(tmp_path / "three")
