"""Publish encoded shards as a collection that ``lsr serve --data-dir DIR`` opens directly.

Goes through the service's own storage API (create, durable writes, seal), so the collection
is laid out exactly as if its documents had been added over REST. Run it while the service
is stopped (or restart the service afterwards): collections are opened at start-up.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from app.jobs.errors import JobStateError
from app.jobs.shards import ShardStore
from app.jobs.vocab import load_saved


def half_precision(indices: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights rounded to float16 steps, as the service stores them (zeros dropped)."""
    rounded = values.astype(np.float16).astype(np.float32)
    keep = rounded > 0
    return indices[keep].astype(np.int32), rounded[keep]


def publish_collection(store: ShardStore, data_dir: Path, name: str, encoder: str, dim: int,
                       index_params: dict[str, Any],
                       vocab_path: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Create collection ``name`` under ``data_dir`` from every shard in ``store``, sealed.
    ``vocab_path``: the column -> token list of given vectors, kept with the collection so
    that ``{token: weight}`` vectors sent to it map the same way."""
    from app.services.registry import CollectionRegistry
    from app.settings import Settings
    from app.storage.collection import CollectionConfig
    from app.storage.vectors import SparseVector

    registry = CollectionRegistry(Settings(data_dir=data_dir))
    registry.root.mkdir(parents=True, exist_ok=True)
    if (registry.root / name).exists():
        raise JobStateError(f"collection {name!r} already exists in {data_dir}; pick another name")
    config = CollectionConfig(name=name, encoder=encoder, dim=dim, index_params=dict(index_params),
                              query_params={}, created_at=time.time())  # fmt: skip
    collection = registry.create(config)
    if vocab_path is not None:
        collection.set_vocabulary(load_saved(vocab_path))
    documents = 0
    try:
        for number in store.complete_shards():
            doc_ids, matrix = store.read_shard(number, dim)
            vectors = []
            for row in range(matrix.shape[0]):
                lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
                vectors.append(SparseVector(*half_precision(matrix.indices[lo:hi],
                                                            matrix.data[lo:hi])))  # fmt: skip
            collection.write(doc_ids, vectors, [None] * len(doc_ids), upsert=True)
            documents += len(doc_ids)
        collection.seal()
        stats = collection.stats()
    finally:
        collection.close()
    return {"collection": name, "path": str(registry.root / name), "documents": documents,
            "stats": stats}  # fmt: skip
