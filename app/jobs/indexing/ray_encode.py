"""Encoding shards on Ray Data: ``map_batches`` with encoder actors (one per GPU, or CPU actors).

Each Ray batch is one whole shard, encoded by :func:`app.jobs.encode.encode_shard`, the very
function the plain path calls on the same shard: the encoder sorts and batches the same texts
the same way. A CPU actor asks Ray for one CPU and runs torch on exactly that one thread, as
each CPU worker of the plain path does (float sums depend on the thread count), so the shards
written are bit for bit those of the plain path. The driver streams the
corpus and writes the shards, so the resume logic and the files are those of the local path.
Windows of shards go through one Ray dataset at a time to bound the object store; a window
is large (``WINDOW_TEXTS`` texts) because each one starts its actors afresh. Imported only for
``lsr index --ray``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from itertools import islice
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import sparse

from app.jobs.encode import available_cores
from app.jobs.errors import DatasetUnavailableError
from app.jobs.indexing.shard_encoders import CPU_THREADS, EncodedShard, ShardInput

logger = logging.getLogger(__name__)

WINDOW_TEXTS = 500_000


class EncodeShard:
    """Ray Data actor: loads the encoder once (torch on the CPUs Ray gave this actor), then
    encodes each batch, one whole shard, with :func:`app.jobs.encode.encode_shard`."""

    def __init__(self, encoder: str, device: str | None, batch_size: int | None) -> None:
        import ray

        from app.jobs.encode import load_job_encoder

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
        self.threads = max(1, int(cpus)) if cpus else None
        self.encoder = load_job_encoder(encoder, device, self.threads)
        self.batch_size = batch_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        from app.jobs.encode import encode_shard

        columns: dict[str, list] = {"shard": [], "dim": [], "indptr": [], "indices": [], "data": []}
        for number, texts in zip(
            batch.column("shard").to_pylist(), batch.column("texts").to_pylist(), strict=True
        ):
            matrix = encode_shard(self.encoder, texts, self.batch_size)
            columns["shard"].append(number)
            columns["dim"].append(matrix.shape[1])
            columns["indptr"].append(np.asarray(matrix.indptr, np.int64).tobytes())
            columns["indices"].append(matrix.indices.tobytes())
            columns["data"].append(matrix.data.tobytes())
        return pa.table(columns)


def decode_row(row: dict[str, Any], n_rows: int) -> sparse.csr_array:
    """The ``csr_array`` an actor sent (int64 indptr, int32 indices, float32 data)."""
    indptr = np.frombuffer(row["indptr"], np.int64)
    indices = np.frombuffer(row["indices"], np.int32)
    data = np.frombuffer(row["data"], np.float32)
    if indptr.size != n_rows + 1:
        raise RuntimeError(
            f"shard {row['shard']}: Ray returned {indptr.size - 1} rows, expected {n_rows}"
        )
    return sparse.csr_array(
        (data.copy(), indices.copy(), indptr.copy()), shape=(n_rows, int(row["dim"]))
    )


class RayShardEncoder:
    """Same interface as ``LocalShardEncoder``: ``dim``, ``encode(shards, bar)``, ``close()``."""

    def __init__(self, config: Any) -> None:
        try:
            import ray
        except ImportError as exc:
            raise DatasetUnavailableError(
                "--ray needs Ray Data: pip install 'ray[data]' (or the project's [ray] extra)"
            ) from exc
        self.ray = ray
        self.config = config
        self._started = False
        if not ray.is_initialized():
            if config.ray == "local":
                ray.init(
                    num_cpus=available_cores(),
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                )
            else:
                ray.init(address=config.ray, log_to_driver=False)
            self._started = True
        ray.data.DataContext.get_current().execution_options.preserve_order = True
        ray.data.DataContext.get_current().enable_progress_bars = False
        self.workers, self.actor_options = self._actor_options()
        logger.info("Ray encoding with %d actors, %s each", self.workers, self.actor_options)
        self._dim: int | None = None

    def _actor_options(self) -> tuple[int, dict[str, Any]]:
        """One actor per GPU; else ``--ray-workers`` CPU actors of one CPU each (torch on one
        thread, as the plain path's CPU workers: the same floats)."""
        resources = self.ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        if gpus:
            return gpus, {"num_gpus": 1}
        threads = str(CPU_THREADS)
        env = {"RAYON_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        return self.config.ray_workers, {"num_cpus": CPU_THREADS, "runtime_env": {"env_vars": env}}

    @property
    def dim(self) -> int | None:
        """Known once the first shard is back."""
        return self._dim

    def _window_shards(self) -> int:
        return max(4 * self.workers, math.ceil(WINDOW_TEXTS / self.config.shard_size))

    def _encode_window(self, window: list[ShardInput]) -> Iterator[EncodedShard]:
        items = [{"shard": s.number, "texts": s.texts} for s in window]
        dataset = self.ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            EncodeShard,
            fn_constructor_kwargs={
                "encoder": self.config.encoder,
                "device": self.config.device,
                "batch_size": self.config.batch_size,
            },
            batch_size=1,
            batch_format="pyarrow",
            concurrency=min(self.workers, len(items)),
            **self.actor_options,
        )
        expected = iter(window)
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            for row in batch.to_pylist():
                shard = next(expected)
                if row["shard"] != shard.number:
                    raise RuntimeError(
                        f"Ray returned shard {row['shard']}, expected {shard.number}"
                    )
                self._dim = int(row["dim"])
                yield EncodedShard(shard.number, shard.doc_ids, decode_row(row, len(shard.doc_ids)))
        if next(expected, None) is not None:
            raise RuntimeError("Ray returned fewer shards than it was given")

    def encode(self, shards: Iterator[ShardInput], bar: Any) -> Iterator[EncodedShard]:
        shards = iter(shards)
        while window := list(islice(shards, self._window_shards())):
            for encoded in self._encode_window(window):
                bar.update(len(encoded.doc_ids))
                yield encoded

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False
