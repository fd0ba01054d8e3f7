"""``lsr index --ray local``: the Ray Data path writes the plain path's shards, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.jobs.indexing.job import IndexJobConfig, run_index_job
from app.jobs.indexing.shard_encoders import set_torch_threads
from tests.jobs.conftest import packages_job, shard_bytes

pytestmark = pytest.mark.ray


def test_ray_local_writes_the_plain_shards_byte_for_byte(
    shared_data: Path, splade_tiny, tmp_path: Path
) -> None:
    ray = pytest.importorskip("ray", reason="ray[data] is not installed (the optional [ray] extra)")
    common = packages_job(shared_data, limit=60, shard_size=25)
    set_torch_threads(2)  # whatever this process had: the job's CPU workers use one thread
    plain = run_index_job(IndexJobConfig(out=tmp_path / "plain", **common), encoder=splade_tiny)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray_config = {"ray": "local", "ray_workers": 2, **common}
        stopped = run_index_job(IndexJobConfig(out=tmp_path / "ray", max_shards=1, **ray_config))
        resumed = run_index_job(IndexJobConfig(out=tmp_path / "ray", **ray_config))
    finally:
        ray.shutdown()
    assert not stopped.complete and stopped.shards_total == 1
    assert resumed.complete and resumed.shards_reused == 1 and resumed.docs_encoded == 35
    assert plain.documents == resumed.documents == 60 and resumed.dim == plain.dim
    plain_files, ray_files = shard_bytes(tmp_path / "plain"), shard_bytes(tmp_path / "ray")
    assert list(plain_files) == [
        "shard-000000.parquet",
        "shard-000001.parquet",
        "shard-000002.parquet",
    ]
    assert plain_files == ray_files
