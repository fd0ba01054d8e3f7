"""A collection: sealed Seismic segments + one mutable segment + a write-ahead log.

Writers hold ``_lock``: append to the WAL (fsync), apply to memory, publish a new immutable
:class:`View`. Readers take the current view without locking. Sealing and merging build new
segment folders outside the lock and swap them in with a checkpoint: tombstone files, then
``manifest.json`` (atomic rename), then old WAL files and folders are removed.

A collection may hold several sparse fields (:mod:`app.storage.fields`): their vectors sit
side by side in each stored row, so everything here (WAL, segments, tombstones) is shared and
a write or delete covers every field at once; sealed segments index each field apart, and live
BM25 fields keep their vocabulary and statistics (:mod:`app.storage.fieldstate`).

Opening verifies everything before it changes anything: ``config.json`` and ``manifest.json``
(checksummed), every sealed segment (:mod:`app.storage.sealed`) and every WAL record. Damage
raises :class:`DamageError` with the files untouched; only then are leftovers cleaned up.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import ConflictError
from app.storage.batch import DocumentBatch
from app.storage.checked import DamageError, read_checked_json, write_checked_json
from app.storage.fanout import FanoutResult, Hit, View, search_view
from app.storage.fields import FieldLayout
from app.storage.fieldstate import FieldState
from app.storage.filters import MetadataFilter
from app.storage.lexical import LiveBM25
from app.storage.maintenance import SealAndMerge, manifest_dict, seg_dir
from app.storage.plan import SearchPlan
from app.storage.sealed import SealedSegment
from app.storage.segment import MutableSegment, Segment
from app.storage.vectors import SparseVector
from app.storage.wal import (
    WalRecord,
    WriteAheadLog,
    list_wal_files,
    mark_path,
    read_mark,
    scan_wal,
    write_mark_file,
)

log = logging.getLogger(__name__)
CONFIG = "config.json"
MANIFEST = "manifest.json"
VOCAB_FILE = "vocab.json"

__all__ = ["Collection", "CollectionConfig", "DamageError", "Hit", "MaintenancePolicy", "View"]


@dataclass(frozen=True)
class CollectionConfig:
    """What a collection was created with (``config.json``); ``target_recall`` (a
    Recall@10 in (0, 1], or None) can be changed later. Files written before it existed
    read as None.

    ``fields`` (None: one field, ``encoder``): field name -> :class:`FieldLayout` as a dict
    (encoder, columns, its own index / query parameters); ``dim`` is then all fields'
    columns together. ``fusion``: the default fusion of the fields' rankings
    (``{"method": "rrf"|"linear", "weights": {field: w}, "rrf_k": 60}``); ``rerank``: the
    default dense re-rank of the fused candidates (``{"field", "depth", "weight"}``).

    ``encoder_fingerprint`` (one field; each field's own in ``fields[name]``): the
    fingerprint of the model the stored vectors came from (:mod:`encoders.fingerprint`),
    pinned at creation; None for encoders without model files (``"none"``, live BM25) and in
    files written before pins existed, which the service pins when it opens them."""

    name: str
    encoder: str
    dim: int
    index_params: dict[str, Any]
    query_params: dict[str, Any]
    created_at: float
    target_recall: float | None = None
    fields: dict[str, dict[str, Any]] | None = None
    fusion: dict[str, Any] | None = None
    encoder_fingerprint: str | None = None
    # The default re-rank of a search that asks for none (``{"field", "depth", "weight"}``,
    # a multi-field collection with a re-rank field); None: no re-rank unless asked.
    rerank: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.fields is None:  # single-field files stay as they were
            del out["fields"], out["fusion"]
        if self.encoder_fingerprint is None:  # and so do unpinned ones
            del out["encoder_fingerprint"]
        if self.rerank is None:  # and those without a default re-rank
            del out["rerank"]
        return out

    def pinned_fingerprint(self, field_name: str) -> str | None:
        """The fingerprint pinned for a field (``""``: the one encoder), or None."""
        if self.fields is None:
            return self.encoder_fingerprint
        return self.fields[field_name].get("encoder_fingerprint")

    def with_fingerprints(self, pins: dict[str, str]) -> CollectionConfig:
        """The same config with these fields' (``""``: the one encoder's) pins replaced."""
        if self.fields is None:
            return replace(self, encoder_fingerprint=pins.get("", self.encoder_fingerprint))
        fields = {
            name: {**body, "encoder_fingerprint": pins[name]} if name in pins else body
            for name, body in self.fields.items()
        }
        return replace(self, fields=fields)

    def layouts(self) -> list[FieldLayout]:
        """The fields, in their column order (one field ``""`` for a single encoder)."""
        if self.fields is None:
            return [
                FieldLayout(
                    "", self.encoder, 0, self.dim, dict(self.index_params), dict(self.query_params)
                )
            ]
        return sorted(
            (FieldLayout.from_dict(name, body) for name, body in self.fields.items()),
            key=lambda layout: layout.offset,
        )


@dataclass(frozen=True)
class MaintenancePolicy:
    seal_rows: int
    flat_rows: int
    max_segments: int
    compact_deleted_fraction: float
    # Measure each new sealed segment's recall/cost front (SeismicIndex.calibrate on
    # pseudo-queries), so that recall targets can be met; off, such segments are searched
    # exactly under a recall target.
    calibrate: bool = False


def read_config(path: Path) -> CollectionConfig:
    body = read_checked_json(path / CONFIG, CONFIG)
    try:
        config = CollectionConfig(**body)
        config.layouts()
    except (TypeError, KeyError, ValueError) as exc:
        raise DamageError(f"{CONFIG} does not describe a collection ({exc})") from None
    return config


class Collection(SealAndMerge, FieldState):
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
        self.layouts = config.layouts()
        # Sealed segments index per field only in a multi-field collection.
        # The fields a sealed segment indexes (a re-rank field is stored, never indexed).
        self.index_fields = (
            [f for f in self.layouts if not f.rerank] if config.fields is not None else None
        )
        self.lexical = {f.name: LiveBM25(f) for f in self.layouts if f.lexical}
        self._counting = False  # live BM25 statistics follow adds and deletes once open
        self._field_views: dict[str, tuple[View, View]] = {}

    # ----------------------------------------------------------------- open
    @classmethod
    def create(cls, path: Path, config: CollectionConfig, policy: MaintenancePolicy) -> Collection:
        tmp = path.with_name(f".{path.name}.creating")
        if tmp.exists():
            shutil.rmtree(tmp)
        (tmp / "segments").mkdir(parents=True)
        (tmp / "wal").mkdir()
        write_checked_json(tmp / CONFIG, config.to_dict())
        write_checked_json(tmp / MANIFEST, manifest_dict([], 1, 1))
        tmp.rename(path)
        return cls.open(path, policy)

    @classmethod
    def open(cls, path: Path, policy: MaintenancePolicy) -> Collection:
        """Verify and load every file, replay the WAL, then clean up leftovers."""
        self = cls(path, read_config(path), policy)
        self._manifest = read_checked_json(path / MANIFEST, MANIFEST)
        if (path / VOCAB_FILE).exists():
            self._use_vocabulary(read_checked_json(path / VOCAB_FILE, VOCAB_FILE)["tokens"])
        for sid in self._manifest["segments"]:
            seg = SealedSegment(
                sid,
                path / "segments" / seg_dir(sid),
                self.config.dim,
                self.config.index_params,
                calibrate=policy.calibrate,
                fields=self.index_fields,
            )
            self._add_sealed(seg, seg.load_deleted())
            self._persisted[sid] = self._deleted[sid].copy()
        self._next_id = int(self._manifest["next_segment_id"])
        wal_seq = int(self._manifest["wal_seq"])
        self.mutable = self._new_mutable(wal_seq)
        live = [(seq, f) for seq, f in list_wal_files(path / "wal") if seq >= wal_seq]
        scans = []
        for seq, wal_file in live:
            acked_bytes, _ = read_mark(path / "wal", seq)
            scans.append((seq, scan_wal(wal_file, acked_bytes)))
        self._load_vocabularies()
        for _, scan in scans:
            for record in scan.records:
                self._apply(record)
        self._clean_up(wal_seq)
        self._open_wal(scans, wal_seq)
        self._publish()
        self._recount()
        log.info(
            "%s: opened, %d docs, %d wal records replayed",
            self.config.name,
            len(self.id_map),
            sum(len(s.records) for _, s in scans),
        )
        return self

    def _open_wal(self, scans: list, wal_seq: int) -> None:
        """Append to the last log, or after a torn last record (ignored, never cut) to a new
        one; the torn log's mark is set to its last whole record."""
        if not scans:
            self.wal = WriteAheadLog(self.path / "wal", wal_seq)
            return
        seq, scan = scans[-1]
        if scan.torn_bytes:
            log.warning(
                "%s: wal-%08d.log ends in a torn record (%d bytes at %d, never "
                "acknowledged); it is kept, new writes go to the next log",
                self.config.name,
                seq,
                scan.torn_bytes,
                scan.valid_end,
            )
            write_mark_file(self.path / "wal", seq, scan.valid_end, len(scan.records))
            self.wal = WriteAheadLog(self.path / "wal", seq + 1)
        else:
            self.wal = WriteAheadLog(self.path / "wal", seq, len(scan.records))

    def _clean_up(self, wal_seq: int) -> None:
        """Segment folders the manifest does not list and WAL files before ``wal_seq`` are
        leftovers of an interrupted seal, merge or checkpoint."""
        keep = {seg_dir(sid) for sid in self._manifest["segments"]}
        for child in (self.path / "segments").iterdir():
            if child.name not in keep:
                log.info("%s: removing unreferenced %s", self.config.name, child.name)
                shutil.rmtree(child, ignore_errors=True)
        for seq, wal_file in list_wal_files(self.path / "wal"):
            if seq < wal_seq:
                wal_file.unlink()
                mark_path(self.path / "wal", seq).unlink(missing_ok=True)

    def set_vocabulary(self, tokens: Sequence[str]) -> None:
        """Keep a column -> token list with the collection (written once, before documents)."""
        if len(tokens) > self.config.dim:
            raise ValueError(f"{len(tokens)} tokens for a collection of dim {self.config.dim}")
        write_checked_json(self.path / VOCAB_FILE, {"tokens": list(tokens)})
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
    def write(self, batch: DocumentBatch, *, upsert: bool) -> int:
        """Add (``upsert=False``: every id must be new) or replace documents; durable on return.
        The WAL record is written from the batch's CSR arrays, which the mutable segment
        then copies whole."""
        with self._lock:
            self._check_open()
            if not upsert:
                taken = [d for d in batch.doc_ids if d in self.id_map]
                if taken:
                    raise ConflictError(
                        f"{len(taken)} document id(s) already exist, e.g. {taken[0]!r}; "
                        "use PUT (upsert) to replace them"
                    )
            if batch.terms:
                batch = self._weigh(batch)
            self.wal.append(WalRecord.of_batch("upsert" if upsert else "add", batch))
            self._learn(batch.vocab)
            self._apply_add(batch)
            self._publish()
        return len(batch)

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
        self._learn(record.vocab)
        if record.op == "delete":
            for doc_id in record.ids:
                loc = self.id_map.pop(doc_id, None)
                if loc is not None:
                    self._tombstone(*loc)
            return
        self._apply_add(record.batch(self.config.dim))

    def _apply_add(self, batch: DocumentBatch) -> None:
        mut = self.mutable
        first = mut.append(batch)
        deleted = self._deleted[mut.seg_id]
        if mut.n_rows > deleted.size:
            grown = np.zeros(max(mut.n_rows, 2 * deleted.size), bool)
            grown[: deleted.size] = deleted
            self._deleted[mut.seg_id] = grown
        for i, doc_id in enumerate(batch.doc_ids):
            self._map_doc(doc_id, mut.seg_id, first + i)
        if self._counting:
            for lex in self.lexical.values():
                lex.add_rows(batch.vectors)

    def _tombstone(self, seg_id: int, row: int) -> None:
        if self._counting and self.lexical:
            vec = self._segments[seg_id].vector(row)
            for lex in self.lexical.values():
                lex.remove_row(vec.indices, vec.values)
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

    def set_target_recall(self, target: float | None) -> CollectionConfig:
        """Change the collection's recall target; ``config.json`` is rewritten atomically
        before the change is visible."""
        with self._lock:
            self._check_open()
            return self._store_config(replace(self.config, target_recall=target))

    def set_encoder_fingerprints(self, pins: dict[str, str]) -> CollectionConfig:
        """Pin these fields' (``""``: the one encoder's) model fingerprints; ``config.json``
        is rewritten atomically before the change is visible."""
        with self._lock:
            self._check_open()
            return self._store_config(self.config.with_fingerprints(pins))

    def _store_config(self, config: CollectionConfig) -> CollectionConfig:
        write_checked_json(self.path / CONFIG, config.to_dict())
        self.config = config
        return config

    def _check_open(self) -> None:
        if self.closed:
            raise ConflictError(f"collection {self.config.name!r} was deleted")

    def mark_wal(self) -> None:
        """Record how much of the current log is acknowledged (the maintenance thread calls
        this about once a second; replay then tells truncation from a torn last record)."""
        with self._lock:
            wal, acked = self.wal, (self.wal.acked_bytes, self.wal.acked_records)
        wal.write_mark(acked)

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
        knobs = {**self.config.query_params, **(query_params or {})}
        plan = SearchPlan(mode="exact") if exact else SearchPlan(knobs=knobs)
        return self.run_search(queries, k, plan, flt).hits

    def run_search(
        self,
        queries: Sequence[SparseVector],
        k: int,
        plan: SearchPlan,
        flt: MetadataFilter | None = None,
    ) -> FanoutResult:
        """Top-``k`` hits per query over the current view as ``plan`` says (the caller fills
        in the collection's default knobs), whether each is certified, and the view."""
        return search_view(self.view, queries, k, plan, flt)

    def locate(self, doc_id: str) -> tuple[Segment, int] | None:
        loc = self.id_map.get(doc_id)
        if loc is None:
            return None
        return self._segments[loc[0]], loc[1]

    def vector_of(self, segment: Segment, row: int) -> SparseVector:
        return segment.vector(row)

    def segment_kind(self, seg: Segment) -> str:
        """``"mutable"``, ``"sealing"`` (frozen, being sealed) or ``"sealed"``."""
        seg = getattr(seg, "base", seg)  # a segment seen through one field
        if seg is self.mutable:
            return "mutable"
        return "sealing" if seg in self._frozen else "sealed"

    def stats(self) -> dict[str, Any]:
        view = self.view
        segments = []
        for seg, n_rows, live in zip(view.segments, view.n_rows, view.live, strict=True):
            kind = self.segment_kind(seg)
            deleted = 0 if live is None else int(n_rows - live[:n_rows].sum())
            segments.append(
                {
                    "id": seg.seg_id,
                    "kind": kind,
                    "rows": n_rows,
                    "deleted": deleted,
                    "indexed": seg.index is not None or bool(getattr(seg, "indexes", None)),
                    "calibrated": getattr(seg.index, "calibration", None) is not None,
                }
            )
            if self.index_fields is not None:
                indexes = getattr(seg, "indexes", {})
                segments[-1]["fields_indexed"] = [f.name for f in self.layouts if f.name in indexes]
                segments[-1]["calibrated"] = any(
                    getattr(i, "calibration", None) is not None for i in indexes.values()
                )
        out = {
            "documents": len(self.id_map),
            "segments": segments,
            "wal_bytes": self.wal.size,
        }
        if self.lexical:
            out["bm25"] = {name: lex.snapshot() for name, lex in self.lexical.items()}
        return out

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self.wal.close()
