"""Encoding shards on Ray Data: ``map_batches`` with encoder actors (one per GPU, or CPU actors).

The driver still streams the corpus and writes the shards, so the resume logic and the files
are the same as the local path; only the encoding moves to the actors. Windows of several
shards go through one Ray dataset at a time to keep the object store small. Imported only for
``lsr index --ray``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from itertools import islice
from typing import Any

import numpy as np
import pyarrow as pa

from app.jobs.errors import DatasetUnavailableError
from app.jobs.shards import matrix_to_table, table_to_matrix

logger = logging.getLogger(__name__)

SHARDS_PER_WINDOW = 8


class EncodeBatch:
    """Ray Data actor: loads the encoder once, encodes batches (Arrow tables) of texts."""

    def __init__(self, encoder: str, device: str | None, batch_size: int | None) -> None:
        from app.jobs.encode import batch_size_for, load_job_encoder

        self.encoder = load_job_encoder(encoder, device)
        self.batch_size = batch_size_for(self.encoder, batch_size)

    def __call__(self, batch: pa.Table) -> pa.Table:
        from app.jobs.encode import encode_sorted

        texts = batch.column("text").to_pylist()
        matrix = encode_sorted(
            self.encoder.encode_documents, texts, self.encoder.dim, self.batch_size
        )
        table = matrix_to_table(batch.column("doc_id").to_pylist(), matrix)
        return table.append_column("pos", batch.column("pos")).append_column(
            "shard", batch.column("shard")
        )


def encoder_dim(encoder: str) -> int:
    """The encoder's output width (run as a Ray task so the driver needs no model)."""
    from app.jobs.encode import load_job_encoder

    return int(load_job_encoder(encoder, "cpu").dim)


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
                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=config.ray, log_to_driver=False)
            self._started = True
        gpus = int(ray.cluster_resources().get("GPU", 0))
        self.actor_options: dict[str, Any] = (
            {"num_gpus": 1, "concurrency": gpus} if gpus else
            {"num_cpus": 1, "concurrency": config.ray_workers}
        )  # fmt: skip
        logger.info("Ray encoding with %s", self.actor_options)
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            task = self.ray.remote(encoder_dim)
            self._dim = int(self.ray.get(task.remote(self.config.encoder)))
        return self._dim

    def _encode_window(self, window: list[tuple[int, list[str], list[str]]]) -> pa.Table:
        items = []
        pos = 0
        for number, doc_ids, texts in window:
            for doc_id, text in zip(doc_ids, texts, strict=True):
                items.append({"pos": pos, "shard": number, "doc_id": doc_id, "text": text})
                pos += 1
        dataset = self.ray.data.from_items(items).map_batches(
            EncodeBatch,
            fn_constructor_kwargs={
                "encoder": self.config.encoder,
                "device": self.config.device,
                "batch_size": self.config.batch_size,
            },
            batch_size=max((self.config.batch_size or 32) * 8, 256),
            batch_format="pyarrow",
            **self.actor_options,
        )
        tables = [self.ray.get(ref) for ref in dataset.to_arrow_refs()]
        table = pa.concat_tables([t for t in tables if t.num_rows]) if tables else None
        if table is None or table.num_rows != len(items):
            got = 0 if table is None else table.num_rows
            raise RuntimeError(f"Ray returned {got} encoded documents for {len(items)}")
        order = np.argsort(table.column("pos").to_numpy(), kind="stable")
        return table.take(pa.array(order))

    def encode(self, shards: Iterator[tuple[int, list[str], list[str]]],
               bar: Any) -> Iterator[tuple[int, list[str], Any]]:  # fmt: skip
        shards = iter(shards)
        while window := list(islice(shards, SHARDS_PER_WINDOW)):
            table = self._encode_window(window)
            offset = 0
            for number, doc_ids, _ in window:
                part = table.slice(offset, len(doc_ids)).select(["doc_id", "indices", "values"])
                offset += len(doc_ids)
                ids, matrix = table_to_matrix(part, self.dim)
                if ids != doc_ids:
                    raise RuntimeError(f"shard {number}: Ray returned rows out of order")
                bar.update(len(doc_ids))
                yield number, ids, matrix

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False
