"""Sealing and merging (a mixin of :class:`app.storage.collection.Collection`).

Both build a new segment folder outside the write lock, then swap it in under the lock with a
checkpoint: changed tombstone files first, then ``manifest.json`` (atomic rename), then the WAL
files and segment folders the manifest no longer needs are removed.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.storage.checked import write_checked_json
from app.storage.sealed import SealedSegment
from app.storage.wal import WriteAheadLog, list_wal_files, mark_path

MANIFEST_FORMAT = 1


class SealAndMerge:
    """Maintenance methods of :class:`app.storage.collection.Collection` (its state: the
    sealed and frozen segments, tombstones, the WAL and the manifest)."""

    def sealed_segments(self) -> list[SealedSegment]:
        return list(self._sealed)

    def needs_seal(self) -> bool:
        return bool(self._frozen) or self.mutable.n_rows >= self.policy.seal_rows

    def seal(self) -> bool:
        """Freeze the mutable segment, build a sealed segment from it, swap it in."""
        with self.maintenance_lock:
            return self._seal_locked()

    def seal_if_needed(self) -> bool:
        """:meth:`seal` if :meth:`needs_seal` still holds once the maintenance lock is held.
        The background thread's check may see a seal that is running (its frozen segment);
        when that seal is done the mutable segment is a new, small one, not to be sealed."""
        with self.maintenance_lock:
            return self.needs_seal() and self._seal_locked()

    def _seal_locked(self) -> bool:
        """:meth:`seal`'s work; the caller holds ``maintenance_lock``."""
        with self._lock:
            self._check_open()
            if self._frozen:  # an earlier seal failed: retry that segment first
                frozen = self._frozen[0]
            else:
                frozen = self.mutable
                if frozen.n_rows == 0:
                    return False
                self._frozen.append(frozen)
                self.wal.close()
                self.wal = WriteAheadLog(self.path / "wal", self.wal.seq + 1)
                self.mutable = self._new_mutable(self.wal.seq)
                self._publish()
            n = frozen.n_rows
            deleted_now = self._deleted[frozen.seg_id][:n].copy()
        lines = [frozen.metadata_line(r) for r in range(n)]
        csr = copy_csr(frozen.csr(n))
        path = self.path / "segments" / seg_dir(frozen.seg_id)
        SealedSegment.write(
            path,
            csr,
            frozen.doc_ids[:n],
            lines,
            deleted_now,
            index_params=self.config.index_params,
            flat_rows=self.policy.flat_rows,
            calibrate=self.policy.calibrate,
            fields=self.index_fields,
        )
        with self._lock:
            sealed = SealedSegment(
                frozen.seg_id,
                path,
                self.config.dim,
                self.config.index_params,
                calibrate=self.policy.calibrate,
                fields=self.index_fields,
            )
            self._frozen.remove(frozen)
            self._sealed.append(sealed)
            self._segments[sealed.seg_id] = sealed
            self._deleted[sealed.seg_id] = self._deleted[frozen.seg_id][:n].copy()
            self._checkpoint()
            self._publish()
        return True

    def merge_candidates(self) -> list[SealedSegment]:
        sealed = list(self._sealed)
        frac = self.policy.compact_deleted_fraction
        for seg in sealed:
            if seg.n_rows and self._deleted[seg.seg_id].sum() >= frac * seg.n_rows:
                return [seg]
        if len(sealed) <= self.policy.max_segments:
            return []
        sealed.sort(key=lambda s: s.n_rows)
        return sealed[: max(2, len(sealed) - self.policy.max_segments + 1)]

    def merge(self, segments: Sequence[SealedSegment] | None = None) -> bool:
        """Rewrite ``segments`` (default: :meth:`merge_candidates`) as one, without tombstones."""
        with self.maintenance_lock:
            with self._lock:
                self._check_open()
                chosen = list(segments) if segments is not None else self.merge_candidates()
                if not chosen:
                    return False
                live_rows = [np.flatnonzero(~self._deleted[s.seg_id]) for s in chosen]
                new_id = self._next_id
                self._next_id += 1
            ids: list[str] = []
            lines: list[str] = []
            parts = []
            for seg, rows in zip(chosen, live_rows, strict=True):
                ids.extend(seg.doc_ids[r] for r in rows)
                lines.extend(seg.metadata_line(r) for r in rows)
                parts.append(seg.csr()[rows])
            total = sum(r.size for r in live_rows)
            path = self.path / "segments" / seg_dir(new_id)
            if total:
                csr = sp.vstack(parts, format="csr")
                SealedSegment.write(
                    path,
                    copy_csr(csr),
                    ids,
                    lines,
                    np.zeros(total, bool),
                    index_params=self.config.index_params,
                    flat_rows=self.policy.flat_rows,
                    calibrate=self.policy.calibrate,
                    fields=self.index_fields,
                )
            with self._lock:
                for seg in chosen:
                    self._sealed.remove(seg)
                if total:
                    merged = SealedSegment(
                        new_id,
                        path,
                        self.config.dim,
                        self.config.index_params,
                        calibrate=self.policy.calibrate,
                        fields=self.index_fields,
                    )
                    self._sealed.append(merged)
                    self._segments[new_id] = merged
                    new_deleted = np.zeros(total, bool)
                    pos = 0
                    for seg, rows in zip(chosen, live_rows, strict=True):
                        now = self._deleted[seg.seg_id][rows]
                        new_deleted[pos : pos + rows.size] = now
                        for i in np.flatnonzero(~now):
                            self.id_map[seg.doc_ids[rows[i]]] = (new_id, pos + int(i))
                        pos += rows.size
                    self._deleted[new_id] = new_deleted
                self._checkpoint()
                self._publish()
                for seg in chosen:
                    self._segments.pop(seg.seg_id, None)
                    self._deleted.pop(seg.seg_id, None)
                    self._persisted.pop(seg.seg_id, None)
                    self._live_cache.pop(seg.seg_id, None)
            for seg in chosen:
                shutil.rmtree(seg.path, ignore_errors=True)
        return True

    def _checkpoint(self) -> None:
        """Persist changed tombstones, then the manifest; then drop the WAL files it covers:
        those older than the oldest segment still unsealed (a failed seal keeps its WAL)."""
        wal_seq = min(s.wal_seq_start for s in [*self._frozen, self.mutable])
        self.save_vocabularies()  # before the WAL files that carried new terms are dropped
        for seg in self._sealed:
            deleted = self._deleted[seg.seg_id]
            old = self._persisted.get(seg.seg_id)
            if old is None or not np.array_equal(old, deleted):
                seg.save_deleted(deleted)
                self._persisted[seg.seg_id] = deleted.copy()
        self._manifest = manifest_dict([s.seg_id for s in self._sealed], wal_seq, self._next_id)
        write_checked_json(self.path / "manifest.json", self._manifest)
        for seq, wal_file in list_wal_files(self.path / "wal"):
            if seq < wal_seq:
                wal_file.unlink(missing_ok=True)
                mark_path(self.path / "wal", seq).unlink(missing_ok=True)


def manifest_dict(segments: list[int], wal_seq: int, next_id: int) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "segments": segments,
        "wal_seq": wal_seq,
        "next_segment_id": next_id,
    }


def seg_dir(seg_id: int) -> str:
    return f"seg-{seg_id:08d}"


def copy_csr(csr: sp.csr_array) -> sp.csr_array:
    return sp.csr_array(
        (
            np.array(csr.data, np.float32),
            np.array(csr.indices, np.int32),
            np.array(csr.indptr, np.int64),
        ),
        shape=csr.shape,
    )
