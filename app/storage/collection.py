"""A collection: sealed Seismic segments + one mutable segment + a write-ahead log.

Writers hold ``_lock``: append to the WAL (fsync), apply to memory, publish a new immutable
:class:`View`. Readers take the current view without locking. Sealing and merging build new
segment folders outside the lock and swap them in with a checkpoint: tombstone files, then
``manifest.json`` (atomic rename), then old WAL files and folders are removed.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import ConflictError
from app.storage.files import write_bytes_atomic, write_json_atomic
from app.storage.filters import MetadataFilter
from app.storage.maintenance import SealAndMerge, manifest_dict, seg_dir
from app.storage.segment import MutableSegment, SealedSegment, Segment, search_segment
from app.storage.vectors import SparseVector, pack
from app.storage.wal import WalRecord, WriteAheadLog, list_wal_files, read_records

log = logging.getLogger(__name__)
VOCAB_FILE = "vocab.json"


@dataclass(frozen=True)
class CollectionConfig:
    """What a collection was created with (``config.json``)."""

    name: str
    encoder: str
    dim: int
    index_params: dict[str, Any]
    query_params: dict[str, Any]
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class View:
    """A consistent snapshot for readers: segments, visible row counts and live masks."""

    segments: tuple[Segment, ...]
    n_rows: tuple[int, ...]
    live: tuple[np.ndarray | None, ...]  # None: nothing deleted


@dataclass(frozen=True)
class Hit:
    doc_id: str
    score: float
    segment: Segment
    row: int


@dataclass(frozen=True)
class MaintenancePolicy:
    seal_rows: int
    flat_rows: int
    max_segments: int
    compact_deleted_fraction: float


class Collection(SealAndMerge):
    """One named collection under ``path``; open with :meth:`open`, create with :meth:`create`."""

    def __init__(self, path: Path, config: CollectionConfig, policy: MaintenancePolicy) -> None:
        self.path = path
        self.config = config
        self.policy = policy
        self._lock = threading.RLock()
        self.maintenance_lock = threading.Lock()
        self._sealed: list[SealedSegment] = []
        self._frozen: list[MutableSegment] = []
        self._deleted: dict[int, np.ndarray] = {}
        self._persisted: dict[int, np.ndarray] = {}
        self._live_cache: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        self.id_map: dict[str, tuple[int, int]] = {}
        self._segments: dict[int, Segment] = {}
        self._manifest: dict[str, Any] = {}
        self.view: View = View((), (), ())
        self.closed = False
        # column -> token of a vocabulary saved with the collection (vectors given as
        # {token: weight} by ``lsr index --vocab build|FILE``); None: no such vocabulary.
        self.vocabulary: list[str] | None = None
        self.token_columns: dict[str, int] = {}

    # ----------------------------------------------------------------- open
    @classmethod
    def create(cls, path: Path, config: CollectionConfig, policy: MaintenancePolicy) -> Collection:
        tmp = path.with_name(f".{path.name}.creating")
        if tmp.exists():
            shutil.rmtree(tmp)
        (tmp / "segments").mkdir(parents=True)
        (tmp / "wal").mkdir()
        write_json_atomic(tmp / "config.json", config.to_dict())
        write_json_atomic(tmp / "manifest.json", manifest_dict([], 1, 1))
        tmp.rename(path)
        return cls.open(path, policy)

    @classmethod
    def open(cls, path: Path, policy: MaintenancePolicy) -> Collection:
        config = CollectionConfig(**json.loads((path / "config.json").read_text()))
        self = cls(path, config, policy)
        self._manifest = json.loads((path / "manifest.json").read_text())
        if (path / VOCAB_FILE).is_file():
            self._use_vocabulary(json.loads((path / VOCAB_FILE).read_text(encoding="utf-8")))
        keep = {seg_dir(sid) for sid in self._manifest["segments"]}
        for child in (path / "segments").iterdir():
            if child.name not in keep:
                log.info("%s: removing unreferenced %s", config.name, child.name)
                shutil.rmtree(child, ignore_errors=True)
        for sid in self._manifest["segments"]:
            seg = SealedSegment(
                sid, path / "segments" / seg_dir(sid), config.dim, config.index_params
            )
            self._add_sealed(seg, seg.load_deleted())
            self._persisted[sid] = self._deleted[sid].copy()
        self._next_id = int(self._manifest["next_segment_id"])
        wal_seq = int(self._manifest["wal_seq"])
        self.mutable = self._new_mutable(wal_seq)
        files = list_wal_files(path / "wal")
        replayed = 0
        for seq, wal_file in files:
            if seq < wal_seq:
                wal_file.unlink()
                continue
            for record in read_records(wal_file):
                self._apply(record)
                replayed += 1
        last = max([seq for seq, _ in files if seq >= wal_seq], default=wal_seq)
        self.wal = WriteAheadLog(path / "wal", last)
        self._publish()
        log.info(
            "%s: opened, %d docs, %d wal records replayed", config.name, len(self.id_map), replayed
        )
        return self

    def set_vocabulary(self, tokens: Sequence[str]) -> None:
        """Keep a column -> token list with the collection (written once, before documents)."""
        if len(tokens) > self.config.dim:
            raise ValueError(f"{len(tokens)} tokens for a collection of dim {self.config.dim}")
        payload = json.dumps(list(tokens), ensure_ascii=False).encode("utf-8")
        write_bytes_atomic(self.path / VOCAB_FILE, payload)
        self._use_vocabulary(tokens)

    def _use_vocabulary(self, tokens: Sequence[str]) -> None:
        self.vocabulary = list(tokens)
        self.token_columns = {}
        for col, token in enumerate(self.vocabulary):
            self.token_columns.setdefault(token, col)

    def _new_mutable(self, wal_seq_start: int) -> MutableSegment:
        """A new mutable segment whose records start in WAL file ``wal_seq_start``."""
        seg = MutableSegment(self._next_id, self.config.dim)
        seg.wal_seq_start = wal_seq_start
        self._next_id += 1
        self._segments[seg.seg_id] = seg
        self._deleted[seg.seg_id] = np.zeros(1024, bool)
        return seg

    def _add_sealed(self, seg: SealedSegment, deleted: np.ndarray) -> None:
        self._sealed.append(seg)
        self._segments[seg.seg_id] = seg
        self._deleted[seg.seg_id] = deleted
        for row in np.flatnonzero(~deleted):
            self._map_doc(seg.doc_ids[row], seg.seg_id, int(row))

    def _map_doc(self, doc_id: str, seg_id: int, row: int) -> None:
        old = self.id_map.get(doc_id)
        if old is not None:
            self._tombstone(*old)
        self.id_map[doc_id] = (seg_id, row)

    # --------------------------------------------------------------- writes
    def write(
        self,
        doc_ids: Sequence[str],
        vectors: Sequence[SparseVector],
        metadata: Sequence[Any],
        *,
        upsert: bool,
    ) -> int:
        """Add (``upsert=False``: every id must be new) or replace documents; durable on return."""
        lengths, indices, values = pack(vectors)
        record = WalRecord(
            "upsert" if upsert else "add",
            list(doc_ids),
            lengths.tolist(),
            list(metadata),
            indices,
            values,
        )
        with self._lock:
            self._check_open()
            if not upsert:
                taken = [d for d in doc_ids if d in self.id_map]
                if taken:
                    raise ConflictError(
                        f"{len(taken)} document id(s) already exist, e.g. {taken[0]!r}; "
                        "use PUT (upsert) to replace them"
                    )
            self.wal.append(record)
            self._apply_add(doc_ids, vectors, metadata)
            self._publish()
        return len(doc_ids)

    def delete(self, doc_ids: Sequence[str]) -> list[str]:
        """Delete the ids that exist; returns them (durable on return)."""
        with self._lock:
            self._check_open()
            found = list(dict.fromkeys(d for d in doc_ids if d in self.id_map))
            if found:
                self.wal.append(WalRecord("delete", found))
                for doc_id in found:
                    self._tombstone(*self.id_map.pop(doc_id))
                self._publish()
        return found

    def _apply(self, record: WalRecord) -> None:
        if record.op == "delete":
            for doc_id in record.ids:
                loc = self.id_map.pop(doc_id, None)
                if loc is not None:
                    self._tombstone(*loc)
            return
        offsets = np.zeros(len(record.lengths) + 1, np.int64)
        np.cumsum(record.lengths, out=offsets[1:])
        vectors = [
            SparseVector(record.indices[a:b], record.values[a:b])
            for a, b in zip(offsets[:-1], offsets[1:], strict=True)
        ]
        self._apply_add(record.ids, vectors, record.metadata)

    def _apply_add(
        self, doc_ids: Sequence[str], vectors: Sequence[SparseVector], metadata: Sequence[Any]
    ) -> None:
        mut = self.mutable
        first = mut.append(doc_ids, vectors, metadata)
        deleted = self._deleted[mut.seg_id]
        if mut.n_rows > deleted.size:
            grown = np.zeros(max(mut.n_rows, 2 * deleted.size), bool)
            grown[: deleted.size] = deleted
            self._deleted[mut.seg_id] = grown
        for i, doc_id in enumerate(doc_ids):
            self._map_doc(doc_id, mut.seg_id, first + i)

    def _tombstone(self, seg_id: int, row: int) -> None:
        deleted = self._deleted[seg_id]
        if self._live_cache.get(seg_id, (None,))[0] is deleted:
            deleted = deleted.copy()  # copy on write: published views keep the old mask
            self._deleted[seg_id] = deleted
        deleted[row] = True

    def _publish(self) -> None:
        segs: list[Segment] = [*self._sealed, *self._frozen, self.mutable]
        lives = []
        for seg in segs:
            deleted = self._deleted[seg.seg_id]
            cached = self._live_cache.get(seg.seg_id)
            if cached is None or cached[0] is not deleted:
                live = ~deleted if deleted.any() else None
                cached = (deleted, live)
                self._live_cache[seg.seg_id] = cached
            lives.append(cached[1])
        self.view = View(tuple(segs), tuple(s.n_rows for s in segs), tuple(lives))

    def _check_open(self) -> None:
        if self.closed:
            raise ConflictError(f"collection {self.config.name!r} was deleted")

    # --------------------------------------------------------------- reads
    def search(
        self,
        queries: Sequence[SparseVector],
        k: int,
        *,
        flt: MetadataFilter | None = None,
        query_params: dict[str, Any] | None = None,
        exact: bool = False,
    ) -> list[list[Hit]]:
        """Top-``k`` hits per query over every segment of the current view, best first."""
        view = self.view
        params = {**self.config.query_params, **(query_params or {})}
        per_query: list[list[tuple[np.ndarray, np.ndarray, int]]] = [[] for _ in queries]
        for i, (seg, n_rows, live) in enumerate(
            zip(view.segments, view.n_rows, view.live, strict=True)
        ):
            if n_rows == 0:
                continue
            allowed = None if live is None else live[:n_rows]
            if flt is not None:
                fmask = seg.filter_mask(flt, n_rows)
                allowed = fmask if allowed is None else fmask & allowed
            if allowed is not None and allowed.shape[0] != n_rows:
                allowed = allowed[:n_rows]
            if allowed is not None and not allowed.flags.c_contiguous:
                allowed = np.ascontiguousarray(allowed)
            results = search_segment(
                seg, n_rows, allowed, queries, k, params, filtered=flt is not None, exact=exact
            )
            for j, (rows, scores) in enumerate(results):
                if rows.size:
                    per_query[j].append((rows, scores, i))
        out = []
        for parts in per_query:
            if not parts:
                out.append([])
                continue
            if len(parts) == 1:  # one segment answered: already best first
                rows, scores, i = parts[0]
                seg = view.segments[i]
                out.append(
                    [
                        Hit(seg.doc_ids[r], float(s), seg, int(r))
                        for r, s in zip(rows[:k].tolist(), scores[:k].tolist(), strict=True)
                    ]
                )
                continue
            rows = np.concatenate([p[0] for p in parts])
            scores = np.concatenate([p[1] for p in parts])
            which = np.concatenate([np.full(p[0].size, p[2]) for p in parts])
            order = np.lexsort((which, -scores))[:k]
            out.append(
                [
                    Hit(
                        view.segments[which[o]].doc_ids[rows[o]],
                        float(scores[o]),
                        view.segments[which[o]],
                        int(rows[o]),
                    )
                    for o in order
                ]
            )
        return out

    def locate(self, doc_id: str) -> tuple[Segment, int] | None:
        loc = self.id_map.get(doc_id)
        if loc is None:
            return None
        return self._segments[loc[0]], loc[1]

    def vector_of(self, segment: Segment, row: int) -> SparseVector:
        csr = segment.csr(row + 1) if isinstance(segment, MutableSegment) else segment.csr()
        lo, hi = int(csr.indptr[row]), int(csr.indptr[row + 1])
        return SparseVector(np.asarray(csr.indices[lo:hi]), np.asarray(csr.data[lo:hi]))

    def stats(self) -> dict[str, Any]:
        view = self.view
        segments = []
        for seg, n_rows, live in zip(view.segments, view.n_rows, view.live, strict=True):
            kind = (
                "mutable"
                if seg is self.mutable
                else ("sealing" if seg in self._frozen else "sealed")
            )
            deleted = 0 if live is None else int(n_rows - live[:n_rows].sum())
            segments.append(
                {
                    "id": seg.seg_id,
                    "kind": kind,
                    "rows": n_rows,
                    "deleted": deleted,
                    "indexed": seg.index is not None,
                }
            )
        return {
            "documents": len(self.id_map),
            "segments": segments,
            "wal_bytes": self.wal.size,
        }

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self.wal.close()
