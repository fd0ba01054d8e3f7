"""Shard encoders of ``lsr index``: turn shards of documents into CSR matrices.

All share one interface (``dim``, ``encode(shards, bar)``, ``close()``) and yield shards in
order, so the job writes the same files whichever one ran:

- :class:`LocalShardEncoder`: this process, one worker thread per device: every GPU of the
  host, or one per CPU core (torch on one thread each).
- :class:`VectorShardReader`: the corpus carries vectors; they are validated, never encoded.
- ``app.jobs.ray_encode.RayShardEncoder``: Ray Data actors (imported only for ``--ray``).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from scipy import sparse

from app.jobs.corpus import Document, RawVector
from app.jobs.encode import available_cores, encode_shard, load_job_encoder
from app.jobs.errors import CorpusError
from app.jobs.indexing.vocab import Vocabulary, vectors_to_csr
from app.storage.vectors import VectorError

logger = logging.getLogger(__name__)
# torch intra-op threads of a CPU worker; Ray CPU actors get one CPU for the same reason.
CPU_THREADS = 1


@dataclass(frozen=True)
class ShardInput:
    """Shard ``number``: its documents' ids and texts (or given vectors)."""

    number: int
    doc_ids: list[str]
    texts: list[str]
    vectors: list[RawVector] | None = None

    @classmethod
    def of(cls, number: int, docs: Sequence[Document]) -> ShardInput:
        vectors = [d.vector for d in docs] if docs and docs[0].vector is not None else None
        return cls(number, [d.doc_id for d in docs], [d.text for d in docs], vectors)


@dataclass(frozen=True)
class EncodedShard:
    """Shard ``number`` encoded: ``matrix`` is a ``csr_array`` (len(doc_ids), width)."""

    number: int
    doc_ids: list[str]
    matrix: sparse.csr_array


class ShardEncoder(Protocol):
    """What the job needs from an encoder of shards."""

    @property
    def dim(self) -> int | None: ...

    def encode(self, shards: Iterator[ShardInput], bar: Any) -> Iterator[EncodedShard]: ...

    def close(self) -> None: ...


class LocalShardEncoder:
    """Encoders in this process, one worker thread per device; each worker takes whole shards,
    which come back in order. On the CPU: one worker per core sharing one encoder, torch on
    one intra-op thread (two one-thread workers beat one two-thread encode on small ops, and
    a shard's floats then do not depend on the core count); several GPUs: one encoder each."""

    def __init__(self, name: str, devices: Sequence[str], batch_size: int | None,
                 encoder: Any | None = None) -> None:  # fmt: skip
        if not devices:
            raise ValueError("LocalShardEncoder needs at least one device")
        self.name, self.devices, self.batch_size = name, list(devices), batch_size
        self._given = encoder
        self._free: deque[Any] = deque()
        self._lock = threading.Lock()
        self._dim: int | None = None

    def _load(self, device: str, loaded: dict[str, Any]) -> Any:
        if device not in loaded:
            if device == "cpu":
                loaded[device] = self._given or load_job_encoder(self.name, "cpu", CPU_THREADS)
                set_torch_threads(CPU_THREADS)
            else:
                share = max(1, available_cores() // len(self.devices))
                loaded[device] = load_job_encoder(self.name, device, share)
        return loaded[device]

    def _start(self) -> None:
        if self._free:
            return
        loaded: dict[str, Any] = {}
        self._free.extend(self._load(d, loaded) for d in self.devices)
        self._dim = int(self._free[0].dim)

    def _run(self, shard: ShardInput) -> EncodedShard:
        with self._lock:
            encoder = self._free.popleft()
        try:
            return EncodedShard(shard.number, shard.doc_ids,
                                encode_shard(encoder, shard.texts, self.batch_size))  # fmt: skip
        finally:
            with self._lock:
                self._free.append(encoder)

    @property
    def dim(self) -> int | None:
        """Known once the encoders are loaded (at the first shard)."""
        return self._dim

    def encode(self, shards: Iterator[ShardInput], bar: Any) -> Iterator[EncodedShard]:
        self._start()
        workers = len(self.devices)
        with ThreadPoolExecutor(workers, thread_name_prefix="lsr-encode") as pool:
            pending: deque[Future[EncodedShard]] = deque()
            for shard in shards:
                pending.append(pool.submit(self._run, shard))
                if len(pending) >= workers:  # one shard per worker in flight, no more
                    done = pending.popleft().result()
                    bar.update(len(done.doc_ids))
                    yield done
            while pending:
                done = pending.popleft().result()
                bar.update(len(done.doc_ids))
                yield done

    def close(self) -> None:
        self._free.clear()
        self._given = None


class VectorShardReader:
    """Shards of precomputed vectors: token keys mapped through ``vocab``, every vector
    validated (:func:`app.storage.vectors.checked_csr`); nothing is encoded."""

    def __init__(self, vocab: Vocabulary, dim: int | None) -> None:
        self.vocab = vocab
        self.fixed_dim = dim if dim is not None else vocab.dim

    @property
    def dim(self) -> int | None:
        return self.fixed_dim

    def encode(self, shards: Iterator[ShardInput], bar: Any) -> Iterator[EncodedShard]:
        for shard in shards:
            if shard.vectors is None:
                raise CorpusError(f"shard {shard.number} carries no vectors")
            try:
                matrix = vectors_to_csr(shard.doc_ids, shard.vectors, self.vocab, self.fixed_dim)
            except (VectorError, OverflowError) as exc:
                raise CorpusError(f"bad vector: {exc}") from exc
            bar.update(len(shard.doc_ids))
            yield EncodedShard(shard.number, shard.doc_ids, matrix)

    def close(self) -> None:
        return None


def set_torch_threads(threads: int) -> None:
    """torch's intra-op threads, for the whole process."""
    import torch

    torch.set_num_threads(threads)


def gpu_devices() -> list[str]:
    """``cuda:0``, ``cuda:1``... of this host (empty without CUDA)."""
    try:
        import torch
    except ImportError:
        return []
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(count)]


def pick_devices(device: str | None) -> list[str]:
    """One entry per worker of the plain path: ``--device a,b`` as given; ``cpu`` (or no GPU)
    one ``cpu`` worker per core; by default every GPU of the host; else the one device."""
    if device and "," in device:
        return [d.strip() for d in device.split(",") if d.strip()]
    if device in (None, "", "auto"):
        return gpu_devices() or ["cpu"] * available_cores()
    if device == "cpu":
        return ["cpu"] * available_cores()
    return [device]
