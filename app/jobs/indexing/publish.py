"""Publish encoded shards as a collection that ``lsr serve --data-dir DIR`` opens directly.

Goes through the service's own storage API (create, durable writes, seal), so the collection
is laid out exactly as if its documents had been added over REST. Run it while the service
is stopped (or restart the service afterwards): collections are opened at start-up.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from app.jobs.errors import JobStateError
from app.jobs.indexing.shards import ShardStore
from app.jobs.indexing.vocab import load_saved


def publish_collection(store: ShardStore, data_dir: Path, name: str, encoder: str, dim: int,
                       index_params: dict[str, Any], vocab_path: Path | None = None, *,
                       encoder_fingerprint: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Create collection ``name`` under ``data_dir`` from every shard in ``store``, sealed.
    ``vocab_path``: the column -> token list of given vectors, kept with the collection so
    that ``{token: weight}`` vectors sent to it map the same way. ``encoder_fingerprint``:
    the model that encoded the shards, pinned in the collection (the service then refuses
    to encode text for it with another model, as for a collection created over REST); None
    (vectors given): pinned by the service when it first opens the collection."""
    from app.services.registry import CollectionRegistry
    from app.settings import Settings
    from app.storage.batch import DocumentBatch
    from app.storage.collection import CollectionConfig

    registry = CollectionRegistry(Settings(data_dir=data_dir))
    registry.root.mkdir(parents=True, exist_ok=True)
    if (registry.root / name).exists():
        raise JobStateError(f"collection {name!r} already exists in {data_dir}; pick another name")
    config = CollectionConfig(name=name, encoder=encoder, dim=dim, index_params=dict(index_params),
                              query_params={}, created_at=time.time(),
                              encoder_fingerprint=encoder_fingerprint)  # fmt: skip
    collection = registry.create(config)
    if vocab_path is not None:
        collection.set_vocabulary(load_saved(vocab_path))
    documents = 0
    try:
        for number in store.complete_shards():
            doc_ids, matrix = store.read_shard(number, dim)
            collection.write(DocumentBatch.of(doc_ids, matrix), upsert=True)
            documents += len(doc_ids)
        collection.seal()
        stats = collection.stats()
    finally:
        collection.close()
    return {"collection": name, "path": str(registry.root / name), "documents": documents,
            "stats": stats}  # fmt: skip
