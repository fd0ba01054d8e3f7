"""``lsr index --ray local``: the Ray Data path writes the same shards as the local path."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.jobs.indexing import IndexJobConfig, run_index_job
from app.jobs.shards import ShardStore

pytestmark = pytest.mark.ray


def test_ray_local_matches_local_encoding(shared_data: Path, splade_tiny, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="ray[data] is not installed (optional extra)")
    corpus = str(shared_data / "vectors" / "packages_docs.txt.gz")
    common = {"corpus": corpus, "encoder": "splade-tiny", "limit": 60, "shard_size": 25,
              "progress": False, "build_index": False}  # fmt: skip
    local = run_index_job(IndexJobConfig(out=tmp_path / "local", **common), encoder=splade_tiny)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        stopped = run_index_job(IndexJobConfig(out=tmp_path / "ray", ray="local", max_shards=1,
                                               **common))  # fmt: skip
        resumed = run_index_job(IndexJobConfig(out=tmp_path / "ray", ray="local", **common))
    finally:
        ray.shutdown()
    assert not stopped.complete and stopped.shards_total == 1
    assert resumed.complete and resumed.shards_reused == 1 and resumed.docs_encoded == 35
    assert local.documents == resumed.documents == 60
    ids_local, docs_local = ShardStore(tmp_path / "local" / "shards").read_all(splade_tiny.dim)
    ids_ray, docs_ray = ShardStore(tmp_path / "ray" / "shards").read_all(splade_tiny.dim)
    assert ids_local == ids_ray
    assert abs(docs_local - docs_ray).max() < 1e-5
