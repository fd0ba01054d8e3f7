"""``lsr index``: stream a corpus, encode it into resumable Parquet shards, build the index.

Output folder layout::

    OUT/shards/manifest.json          job settings (corpus, encoder, shard size), dim, state
    OUT/shards/shard-000000.parquet   (doc_id, indices, values), ``shard_size`` documents each
    OUT/index/                        SeismicIndex.save(...)
    OUT/doc_ids.parquet               row -> external doc id, in index row order
    OUT/summary.json                  documents, non-zeros, time per stage, sizes

A shard file exists only once complete (temporary name, fsync, rename), so a job killed at any
point resumes after its last complete shard without re-encoding it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from app.jobs.corpus import Corpus, Document, open_corpus
from app.jobs.encode import batch_size_for, encode_sorted, load_job_encoder
from app.jobs.errors import JobStateError
from app.jobs.shards import ShardStore, atomic_write_bytes

logger = logging.getLogger(__name__)

# One shard = (shard number, doc ids, texts); encoded, the texts become a csr_array.
ShardInput = tuple[int, list[str], list[str]]
ShardOutput = tuple[int, list[str], Any]


@dataclass
class IndexJobConfig:
    """Settings of one batch job. ``max_shards`` stops after that many newly encoded shards
    (a time-boxed run; the next run resumes); ``limit`` indexes only the first documents."""

    corpus: str
    encoder: str
    out: Path
    shard_size: int = 4096
    batch_size: int | None = None
    index_params: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    limit: int | None = None
    max_shards: int | None = None
    overwrite: bool = False
    build_index: bool = True
    ray: str | None = None
    ray_workers: int = 1
    progress: bool = True
    collection: str | None = None
    data_dir: Path | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        for name in ("shard_size", "batch_size", "ray_workers"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if self.max_shards is not None and self.max_shards < 0:
            raise ValueError(f"max_shards must be >= 0, got {self.max_shards}")


@dataclass
class IndexJobSummary:
    """What a run did; ``complete`` is False when it stopped early (``max_shards``)."""

    out: str
    complete: bool
    documents: int = 0
    shards_total: int = 0
    shards_reused: int = 0
    shards_encoded: int = 0
    docs_encoded: int = 0
    encode_docs_per_s: float = 0.0
    nnz_per_doc: float = 0.0
    index_bytes: int = 0
    shards_bytes: int = 0
    collection: dict[str, Any] | None = None
    stages_s: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def job_settings(corpus: Corpus, config: IndexJobConfig) -> dict[str, Any]:
    """What must not change between a run and its resume (it would mix two encodings)."""
    return {
        "corpus": corpus.describe(),
        "encoder": config.encoder,
        "shard_size": config.shard_size,
        "limit": config.limit,
    }


def iter_shards(corpus: Corpus, first_shard: int, shard_size: int,
                limit: int | None) -> Iterator[ShardInput]:  # fmt: skip
    """Shards from ``first_shard`` on; the documents before it are read and skipped."""
    docs: Iterator[Document] = iter(corpus)
    if limit is not None:
        docs = islice(docs, limit)
    docs = islice(docs, first_shard * shard_size, None)
    number = first_shard
    while chunk := list(islice(docs, shard_size)):
        yield number, [d.doc_id for d in chunk], [d.text for d in chunk]
        number += 1


class LocalShardEncoder:
    """Encodes shards in this process (GPU when the encoder picks one, else CPU)."""

    def __init__(self, config: IndexJobConfig) -> None:
        self.config = config
        self._encoder: Any | None = None

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            self._encoder = load_job_encoder(self.config.encoder, self.config.device)
        return self._encoder

    @property
    def dim(self) -> int:
        return int(self.encoder.dim)

    def encode(self, shards: Iterator[ShardInput], bar: tqdm) -> Iterator[ShardOutput]:
        for number, doc_ids, texts in shards:
            matrix = encode_sorted(
                self.encoder.encode_documents,
                texts,
                self.dim,
                batch_size_for(self.encoder, self.config.batch_size),
                bar.update,
            )
            yield number, doc_ids, matrix

    def close(self) -> None:
        self._encoder = None


def make_shard_encoder(config: IndexJobConfig, encoder: Any | None = None) -> Any:
    """The local encoder, or the Ray Data one for ``--ray`` (Ray is imported only then)."""
    if config.ray:
        from app.jobs.ray_encode import RayShardEncoder

        return RayShardEncoder(config)
    local = LocalShardEncoder(config)
    local._encoder = encoder
    return local


def encode_corpus(config: IndexJobConfig, store: ShardStore, corpus: Corpus,
                  summary: IndexJobSummary, encoder: Any | None = None) -> bool:  # fmt: skip
    """Encode the missing shards; True when every document is encoded."""
    manifest = store.read_manifest() or {}
    done = store.complete_shards()
    summary.shards_reused = len(done)
    if manifest.get("complete"):
        return True
    if done and store.shard_rows(done[-1]) < config.shard_size:
        return _mark_complete(store, manifest, done, config)
    total: int | None = corpus.count() or None  # None: the source cannot say
    if config.limit is not None:
        total = min(total, config.limit) if total is not None else config.limit
    already = len(done) * config.shard_size
    if total is not None and already >= total:
        return _mark_complete(store, manifest, done, config)
    shard_encoder = make_shard_encoder(config, encoder)
    if "dim" not in manifest:
        manifest["dim"] = shard_encoder.dim
        store.write_manifest(manifest)
    shards = iter_shards(corpus, len(done), config.shard_size, config.limit)
    if config.max_shards is not None:
        shards = islice(shards, config.max_shards)
    start = time.perf_counter()
    nnz = 0
    with tqdm(total=total, initial=already, desc="encode", unit="doc", smoothing=0.1,
              disable=not config.progress) as bar:  # fmt: skip
        for number, doc_ids, matrix in shard_encoder.encode(shards, bar):
            store.write_shard(number, doc_ids, matrix)
            summary.shards_encoded += 1
            summary.docs_encoded += len(doc_ids)
            nnz += matrix.nnz
    shard_encoder.close()
    elapsed = time.perf_counter() - start
    summary.encode_docs_per_s = round(summary.docs_encoded / elapsed, 2) if elapsed > 0 else 0.0
    if summary.docs_encoded:  # replaced by the whole corpus's figure when the index is built
        summary.nnz_per_doc = round(nnz / summary.docs_encoded, 2)
    done = store.complete_shards()
    encoded = sum(store.shard_rows(n) for n in done)
    # The shard stream ran dry (rather than stopping at max_shards): the corpus is done.
    ended = config.max_shards is None or summary.shards_encoded < config.max_shards
    if ended or (total is not None and encoded >= total):
        return _mark_complete(store, manifest, done, config)
    return False


def _mark_complete(store: ShardStore, manifest: dict[str, Any], done: list[int],
                   config: IndexJobConfig) -> bool:  # fmt: skip
    manifest["complete"] = True
    manifest["shards"] = len(done)
    manifest["documents"] = sum(store.shard_rows(n) for n in done)
    store.write_manifest(manifest)
    return True


def write_doc_ids(path: Path, doc_ids: list[str]) -> None:
    """Row -> external id, as a one-column Parquet file written atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.table({"doc_id": pa.array(doc_ids, pa.string())}), tmp)
    tmp.replace(path)


def read_doc_ids(path: Path) -> list[str]:
    return pq.read_table(path).column("doc_id").to_pylist()


def build_index(config: IndexJobConfig, store: ShardStore, summary: IndexJobSummary) -> None:
    """Stack the shards, build the SeismicIndex, save it with the row -> doc id table."""
    from index import SeismicIndex

    manifest = store.read_manifest() or {}
    if "dim" not in manifest:
        raise JobStateError(f"{store.folder}: no encoded shards to build an index from")
    start = time.perf_counter()
    doc_ids, matrix = store.read_all(int(manifest["dim"]))
    summary.stages_s["load_shards"] = round(time.perf_counter() - start, 3)
    if matrix.shape[0] == 0:
        raise JobStateError(f"{config.corpus}: the corpus is empty, nothing to index")
    if len(set(doc_ids)) != len(doc_ids):
        logger.warning("the corpus repeats some document ids; rows stay distinct in the index")
    summary.nnz_per_doc = round(float(np.diff(matrix.indptr).mean()), 2)
    start = time.perf_counter()
    index = SeismicIndex.build(matrix, **config.index_params)
    summary.stages_s["build_index"] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    index.save(config.out / "index")
    write_doc_ids(config.out / "doc_ids.parquet", doc_ids)
    summary.stages_s["save_index"] = round(time.perf_counter() - start, 3)
    summary.index_bytes = folder_bytes(config.out / "index")


def run_index_job(config: IndexJobConfig, encoder: Any | None = None) -> IndexJobSummary:
    """Encode (resuming when shards exist) and build; ``encoder`` overrides loading by name."""
    corpus = open_corpus(config.corpus)
    config.out.mkdir(parents=True, exist_ok=True)
    store = ShardStore(config.out / "shards")
    store.open(job_settings(corpus, config), overwrite=config.overwrite)
    summary = IndexJobSummary(out=str(config.out), complete=False)
    start = time.perf_counter()
    complete = encode_corpus(config, store, corpus, summary, encoder)
    summary.stages_s["encode"] = round(time.perf_counter() - start, 3)
    done = store.complete_shards()
    summary.shards_total = len(done)
    summary.documents = sum(store.shard_rows(n) for n in done)
    summary.shards_bytes = folder_bytes(store.folder)
    if complete and config.build_index:
        build_index(config, store, summary)
    if complete and config.collection:
        from app.jobs.publish import publish_collection

        start = time.perf_counter()
        dim = int((store.read_manifest() or {})["dim"])
        data_dir = Path(config.data_dir or "lsr-data")
        summary.collection = publish_collection(
            store, data_dir, config.collection, config.encoder, dim, config.index_params
        )
        summary.stages_s["publish_collection"] = round(time.perf_counter() - start, 3)
    summary.complete = complete
    report = json.dumps(summary.to_dict(), indent=2).encode()
    atomic_write_bytes(config.out / "summary.json", report)
    return summary
