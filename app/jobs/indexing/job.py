"""``lsr index``: stream a corpus, encode it into resumable Parquet shards, build the index.

Output folder layout::

    OUT/shards/manifest.json          job settings (corpus, encoder, shard size), dim, state
    OUT/shards/shard-000000.parquet   (doc_id, indices, values), ``shard_size`` documents each
    OUT/shards/vocab.json             ``--vocab build`` only: token of each column so far
    OUT/index/                        SeismicIndex.build_from_shards(shards, out=OUT/index)
    OUT/doc_ids.parquet               row -> external doc id, in index row order
    OUT/vocab.json                    ``--vocab build`` / ``--vocab FILE``: column -> token
    OUT/summary.json                  documents, non-zeros, time per stage, sizes

A shard file exists only once complete (temporary name, fsync, rename), so a job killed at any
point resumes after its last complete shard without re-encoding it. The index is built from
the shard files one at a time: the whole CSR is never held in memory.
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

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from app.jobs.corpus import Corpus
from app.jobs.errors import CorpusError, JobStateError
from app.jobs.indexing.shard_encoders import (
    LocalShardEncoder,
    ShardEncoder,
    ShardInput,
    VectorShardReader,
    pick_devices,
)
from app.jobs.indexing.shards import FINGERPRINT_KEY, ShardStore, atomic_write_bytes
from app.jobs.indexing.vocab import VOCAB_MODES, VOCAB_NAME, Vocabulary, load_saved
from app.jobs.sources import open_corpus
from app.storage.vectors import MAX_DIM

logger = logging.getLogger(__name__)
NO_ENCODER = "none"


@dataclass
class IndexJobConfig:
    """Settings of one batch job. ``max_shards`` stops after that many newly encoded shards
    (a time-boxed run; the next run resumes); ``limit`` indexes only the first documents.
    ``vocab`` and ``dim`` apply to corpora of precomputed vectors
    (see :mod:`app.jobs.indexing.vocab`).
    """

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
    vocab: str | None = None
    dim: int | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        for name in ("shard_size", "batch_size", "ray_workers", "dim"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dim is not None and self.dim > MAX_DIM:
            raise ValueError(f"dim must be <= {MAX_DIM}, got {self.dim}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if self.max_shards is not None and self.max_shards < 0:
            raise ValueError(f"max_shards must be >= 0, got {self.max_shards}")
        named = self.vocab in VOCAB_MODES
        if self.vocab is not None and not named and not Path(self.vocab).is_file():
            raise ValueError(
                f"vocab must be one of {', '.join(VOCAB_MODES)} or a file, got {self.vocab!r}"
            )


@dataclass
class IndexJobSummary:
    """What a run did; ``complete`` is False when it stopped early (``max_shards``)."""

    out: str
    complete: bool
    vectors: str = "encoded"  # or "given": the corpus carried them (never re-encoded)
    documents: int = 0
    dim: int | None = None
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


def vocab_mode(config: IndexJobConfig) -> str:
    """``--vocab`` as given, else ``ids`` without an encoder and ``encoder`` with one."""
    return config.vocab or ("ids" if config.encoder == NO_ENCODER else "encoder")


def job_settings(corpus: Corpus, config: IndexJobConfig) -> dict[str, Any]:
    """What must not change between a run and its resume (it would mix two encodings)."""
    settings = {
        "corpus": corpus.describe(),
        "encoder": config.encoder,
        "shard_size": config.shard_size,
        "limit": config.limit,
    }
    if corpus.has_vectors:
        settings.update(vocab=vocab_mode(config), dim=config.dim)
    elif (fingerprint := text_encoder_fingerprint(config.encoder)) is not None:
        # the model's files, not only its name: a model replaced under the same name between
        # a run and its resume would encode the rest of the corpus differently
        settings[FINGERPRINT_KEY] = fingerprint
    return settings


def text_encoder_fingerprint(name: str) -> str | None:
    """The fingerprint (:func:`encoders.fingerprint.model_fingerprint`) of the model that
    encodes a text corpus; None without one, or when ``name`` resolves to no model (an
    encoder handed to :func:`run_index_job` in its place: the encode step then says why)."""
    if name == NO_ENCODER:
        return None
    from encoders.fingerprint import model_fingerprint_or_none

    return model_fingerprint_or_none(name, fetch=True)  # the job loads (fetches) it next


def iter_shards(
    corpus: Corpus, first_shard: int, shard_size: int, limit: int | None
) -> Iterator[ShardInput]:
    """Shards from ``first_shard`` on (the corpus skips the documents before it)."""
    start = first_shard * shard_size
    docs = corpus.iter_from(start)
    if limit is not None:
        docs = islice(docs, max(0, limit - start))
    number = first_shard
    while chunk := list(islice(docs, shard_size)):
        yield ShardInput.of(number, chunk)
        number += 1


def make_vocab(config: IndexJobConfig, store: ShardStore, encoder: Any | None) -> Vocabulary:
    """The vocabulary of a corpus of vectors (``--vocab``; see :mod:`app.jobs.indexing.vocab`)."""
    from app.jobs.encode import load_job_encoder

    mode = vocab_mode(config)
    if mode == "ids":
        return Vocabulary.ids()
    if mode == "build":
        return Vocabulary.build(load_saved(store.folder / VOCAB_NAME))
    if mode == "encoder":
        if config.encoder == NO_ENCODER:
            raise CorpusError("--vocab encoder needs --encoder NAME (not none)")
        return Vocabulary.of_encoder(encoder or load_job_encoder(config.encoder, "cpu"))
    return Vocabulary.from_file(Path(mode))


def vector_reader(
    config: IndexJobConfig, corpus: Corpus, store: ShardStore, encoder: Any | None
) -> VectorShardReader:
    vocab = make_vocab(config, store, encoder)
    known = {"--dim": config.dim, "the file's header": corpus.dim, "the vocabulary": vocab.dim}
    given = {name: d for name, d in known.items() if d is not None}
    if len(set(given.values())) > 1:
        raise CorpusError(f"the vector width disagrees: {given}")
    if config.ray:
        logger.info("the corpus carries vectors: nothing to encode, --ray is not used")
    logger.info("the corpus carries vectors: indexing them as given (vocabulary: %s)", vocab.kind)
    return VectorShardReader(vocab, next(iter(given.values()), None))


def make_shard_encoder(
    config: IndexJobConfig, corpus: Corpus, store: ShardStore, encoder: Any | None = None
) -> ShardEncoder:
    """Vectors as given, Ray Data actors for ``--ray`` (Ray is imported only then), else
    encoders in this process: one worker per GPU, or per CPU core."""
    if corpus.has_vectors:
        return vector_reader(config, corpus, store, encoder)
    if config.encoder == NO_ENCODER:
        raise CorpusError(
            "--encoder none needs precomputed vectors (JsonVectorCollection or Seismic jsonl "
            "lines with a 'vector', a big-ann .csr file, or Parquet indices/values columns)"
        )
    if config.ray:
        from app.jobs.indexing.ray_encode import RayShardEncoder

        return RayShardEncoder(config)
    devices = pick_devices(config.device)
    logger.info("encoding on %d worker(s): %s", len(devices), ", ".join(devices))
    return LocalShardEncoder(config.encoder, devices, config.batch_size, encoder)


def encode_corpus(
    config: IndexJobConfig,
    store: ShardStore,
    corpus: Corpus,
    summary: IndexJobSummary,
    encoder: Any | None = None,
) -> bool:
    """Encode the missing shards; True when every document is encoded."""
    manifest = store.read_manifest() or {}
    done = store.complete_shards()
    summary.shards_reused = len(done)
    if manifest.get("complete"):
        return True
    if done and store.shard_rows(done[-1]) < config.shard_size:
        return _mark_complete(store, manifest, config)
    total: int | None = corpus.count() or None  # None: the source cannot say
    if config.limit is not None:
        total = min(total, config.limit) if total is not None else config.limit
    already = len(done) * config.shard_size
    if total is not None and already >= total:
        return _mark_complete(store, manifest, config)
    shard_encoder = make_shard_encoder(config, corpus, store, encoder)
    shards = iter_shards(corpus, len(done), config.shard_size, config.limit)
    if config.max_shards is not None:
        shards = islice(shards, config.max_shards)
    vocab = getattr(shard_encoder, "vocab", None)
    growing = vocab is not None and vocab.growable
    start = time.perf_counter()
    nnz = 0
    with tqdm(
        total=total,
        initial=already,
        desc="encode",
        unit="doc",
        smoothing=0.1,
        disable=not config.progress,
    ) as bar:
        try:
            for shard in shard_encoder.encode(shards, bar):
                if growing:  # before the shard: a resume must map its tokens the same way
                    vocab.save(store.folder / VOCAB_NAME)
                store.write_shard(shard.number, shard.doc_ids, shard.matrix)
                if "dim" not in manifest and shard_encoder.dim is not None:
                    manifest["dim"] = shard_encoder.dim
                    store.write_manifest(manifest)
                summary.shards_encoded += 1
                summary.docs_encoded += len(shard.doc_ids)
                nnz += shard.matrix.nnz
        finally:
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
        return _mark_complete(store, manifest, config)
    return False


def _mark_complete(store: ShardStore, manifest: dict[str, Any], config: IndexJobConfig) -> bool:
    """Record the shard count, the documents and (for vectors of open width) the width:
    the largest column + 1, or the built vocabulary's size."""
    rows, _, top = store.column_stats()
    if "dim" not in manifest:
        vocab_size = len(load_saved(store.folder / VOCAB_NAME))
        manifest["dim"] = config.dim or max(top + 1, vocab_size, 1)
    manifest.update(complete=True, shards=len(store.complete_shards()), documents=rows)
    store.write_manifest(manifest)
    return True


def write_doc_ids(path: Path, store: ShardStore) -> None:
    """Row -> external id, as a one-column Parquet file written shard by shard, atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    schema = pa.schema([("doc_id", pa.string())])
    with pq.ParquetWriter(tmp, schema) as writer:
        for ids in store.iter_doc_ids():
            writer.write_table(pa.table({"doc_id": pa.array(ids, pa.string())}, schema=schema))
    tmp.replace(path)


def read_doc_ids(path: Path) -> list[str]:
    return pq.read_table(path).column("doc_id").to_pylist()


def copy_vocab(config: IndexJobConfig, store: ShardStore) -> Path | None:
    """``OUT/vocab.json`` for built or file vocabularies (the encoder's is the encoder's)."""
    mode = vocab_mode(config)
    if mode == "build":
        tokens = load_saved(store.folder / VOCAB_NAME)
    elif mode not in VOCAB_MODES:
        tokens = Vocabulary.from_file(Path(mode)).tokens
    else:
        return None
    path = config.out / VOCAB_NAME
    Vocabulary("saved", tokens).save(path)
    return path


def build_index(config: IndexJobConfig, store: ShardStore, summary: IndexJobSummary) -> None:
    """Build the SeismicIndex from the shard files, one at a time (never stacked in memory),
    straight into ``OUT/index``; then the row -> doc id table, shard by shard."""
    from index import SeismicIndex

    manifest = store.read_manifest() or {}
    if "dim" not in manifest:
        raise JobStateError(f"{store.folder}: no encoded shards to build an index from")
    start = time.perf_counter()
    rows, nnz, _ = store.column_stats()
    if rows == 0:
        raise JobStateError(f"{config.corpus}: the corpus is empty, nothing to index")
    summary.nnz_per_doc = round(nnz / rows, 2)
    paths = [str(p) for p in store.shard_paths()]
    # written to OUT/index as it is built (the forward index part by part), memory-mapped
    SeismicIndex.build_from_shards(
        paths, dim=int(manifest["dim"]), out=config.out / "index", **config.index_params
    )
    summary.stages_s["build_index"] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    write_doc_ids(config.out / "doc_ids.parquet", store)
    summary.stages_s["save_ids"] = round(time.perf_counter() - start, 3)
    summary.index_bytes = folder_bytes(config.out / "index")


def run_index_job(config: IndexJobConfig, encoder: Any | None = None) -> IndexJobSummary:
    """Encode (resuming when shards exist) and build; ``encoder`` overrides loading by name."""
    corpus = open_corpus(config.corpus)
    config.out.mkdir(parents=True, exist_ok=True)
    store = ShardStore(config.out / "shards")
    store.open(job_settings(corpus, config), overwrite=config.overwrite)
    summary = IndexJobSummary(
        out=str(config.out), complete=False, vectors="given" if corpus.has_vectors else "encoded"
    )
    start = time.perf_counter()
    complete = encode_corpus(config, store, corpus, summary, encoder)
    summary.stages_s["encode"] = round(time.perf_counter() - start, 3)
    done = store.complete_shards()
    summary.shards_total = len(done)
    summary.documents = sum(store.shard_rows(n) for n in done)
    summary.shards_bytes = folder_bytes(store.folder)
    summary.dim = (store.read_manifest() or {}).get("dim")
    vocab_path = copy_vocab(config, store) if complete else None
    if complete and config.build_index:
        build_index(config, store, summary)
    if complete and config.collection:
        from app.jobs.indexing.publish import publish_collection

        start = time.perf_counter()
        data_dir = Path(config.data_dir or "lsr-data")
        settings = (store.read_manifest() or {}).get("settings", {})
        summary.collection = publish_collection(
            store,
            data_dir,
            config.collection,
            config.encoder,
            int(summary.dim or 0),
            config.index_params,
            vocab_path,
            encoder_fingerprint=settings.get(FINGERPRINT_KEY),
        )
        summary.stages_s["publish_collection"] = round(time.perf_counter() - start, 3)
    summary.complete = complete
    report = json.dumps(summary.to_dict(), indent=2).encode()
    atomic_write_bytes(config.out / "summary.json", report)
    return summary
