"""``lsr repair``: recover what can be recovered of a damaged collection, say what is lost.

:func:`inspect` reads every file of a collection the way opening it does, and turns each
problem into a :class:`Finding`: what is wrong, what repair will do, which documents are lost.
:func:`repair` carries the plan out: every file it changes or removes is first copied to
``DATA_DIR/repair-backups/NAME-TIME/``, and every action is logged. Nothing here runs unless
an operator asks; the service only ever quarantines.

- a damaged WAL: rewritten with every readable record, before and after the damage (reading
  resumes at the next whole frame); the records in unreadable stretches are lost, and their
  ids are named when the stretch still shows them;
- a damaged segment: dropped (its documents are lost; their ids listed when readable);
- damaged tombstones: reset (deleted documents of that segment come back);
- a damaged collection manifest: rebuilt from the segment folders and WAL files present;
- a damaged ``config.json``: not repairable (it says what the collection is); restore it;
- a damaged BM25 vocabulary (``lexical-<field>.json``): not repairable either (which stemmed
  term each column holds cannot be derived from the stored weights); restore it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.storage.checked import DamageError, read_array, read_checked_json, write_checked_json
from app.storage.collection import MANIFEST, read_config
from app.storage.maintenance import manifest_dict, seg_dir
from app.storage.sealed import TOMBSTONES, SealedSegment, save_tombstones
from app.storage.wal import (
    list_wal_files,
    read_mark,
    recover_records,
    scan_wal,
    write_mark_file,
)

log = logging.getLogger(__name__)
_IDS = re.compile(rb'"ids":(\[[^\]]*\])')


@dataclass
class Finding:
    """One problem: the ``file`` (relative to the collection), what is wrong, what repair
    does about it, and the documents that are lost by it."""

    file: str
    problem: str
    action: str
    lost: list[str] = field(default_factory=list)
    lost_note: str = ""


@dataclass
class RepairPlan:
    name: str
    path: Path
    findings: list[Finding] = field(default_factory=list)
    repairable: bool = True
    manifest: dict | None = None  # the manifest to write (when it changes)
    drop_segments: list[int] = field(default_factory=list)
    reset_tombstones: list[int] = field(default_factory=list)
    rewrite_wal: dict[int, list[bytes]] = field(default_factory=dict)  # seq -> whole frames

    def report(self) -> str:
        if not self.findings:
            return f"{self.name}: no damage found"
        lines = [f"{self.name}: {len(self.findings)} problem(s)"]
        for f in self.findings:
            lines.append(f"- {f.file}: {f.problem}\n  repair: {f.action}")
            if f.lost or f.lost_note:
                shown = ", ".join(f.lost[:50]) + (" ..." if len(f.lost) > 50 else "")
                lines.append(
                    f"  lost: {len(f.lost)} document(s){': ' + shown if shown else ''}"
                    f"{' ' + f.lost_note if f.lost_note else ''}"
                )
        return "\n".join(lines)


def _segment_ids(folder: Path) -> list[str] | None:
    """The ids of a segment as far as its ``doc_ids`` file can still be read."""
    try:
        return [str(x) for x in read_array(folder / "doc_ids.arrow", "doc_ids").to_pylist()]
    except (DamageError, OSError):
        return None


def _check_segments(plan: RepairPlan, manifest: dict, dim: int, params: dict) -> None:
    for sid in list(manifest["segments"]):
        folder = plan.path / "segments" / seg_dir(sid)
        try:
            seg = SealedSegment(sid, folder, dim, params)
        except DamageError as exc:
            ids = _segment_ids(folder) if folder.is_dir() else None
            plan.findings.append(
                Finding(
                    f"segments/{seg_dir(sid)}",
                    str(exc),
                    "drop the segment",
                    ids or [],
                    "" if ids is not None else "(all of its rows; their ids are unreadable)",
                )
            )
            plan.drop_segments.append(sid)
            continue
        try:
            seg.load_deleted()
        except DamageError as exc:
            plan.findings.append(
                Finding(
                    f"segments/{seg_dir(sid)}/{TOMBSTONES}",
                    str(exc),
                    "reset the tombstones: documents deleted from this segment come back",
                )
            )
            plan.reset_tombstones.append(sid)


def _check_wal(plan: RepairPlan, seq: int, path: Path) -> None:
    name = f"wal/{path.name}"
    try:
        acked_bytes, acked_records = read_mark(path.parent, seq)
    except DamageError as exc:
        plan.findings.append(
            Finding(
                name.replace(".log", ".mark"),
                str(exc),
                "write a new mark after the readable records",
            )
        )
        acked_bytes, acked_records = 0, 0
        plan.rewrite_wal.setdefault(seq, [])
    try:
        scan_wal(path, acked_bytes)
        if seq not in plan.rewrite_wal:
            return
    except DamageError as exc:
        plan.findings.append(Finding(name, str(exc), ""))
    data = path.read_bytes()
    frames, lost_ids, bad = [], [], []
    for start, end, record in recover_records(data):
        if record is not None:
            frames.append(data[start:end])
            continue
        bad.append((start, end))
        if end == len(data) and start >= acked_bytes:
            continue  # a torn last record: never acknowledged, so nothing acknowledged lost
        for found in _IDS.findall(data[start:end]):
            try:
                lost_ids.extend(str(x) for x in json.loads(found))
            except ValueError:
                pass
    plan.rewrite_wal[seq] = frames
    finding = plan.findings[-1]
    stretches = ", ".join(f"bytes {a}..{b}" for a, b in bad) or "none"
    finding.action = (
        f"rewrite the log with its {len(frames)} readable record(s); unreadable: {stretches}"
    )
    finding.lost = lost_ids
    missing = max(0, acked_records - len(frames))
    if missing or bad:
        finding.lost_note = (
            f"({missing} of {acked_records} acknowledged record(s) are unreadable)"
            if acked_records
            else ""
        )


def _rebuilt_manifest(path: Path) -> dict:
    segments = sorted(int(p.name[4:]) for p in (path / "segments").glob("seg-*") if p.is_dir())
    logs = [seq for seq, _ in list_wal_files(path / "wal")]
    return manifest_dict(segments, min(logs, default=1), max([*segments, *logs, 0]) + 1)


def inspect(path: Path) -> RepairPlan:
    """Read every file of the collection at ``path``; the plan of what repair would do."""
    plan = RepairPlan(path.name, path)
    try:
        config = read_config(path)
    except DamageError as exc:
        plan.findings.append(
            Finding(
                "config.json",
                str(exc),
                "none: restore config.json from a backup (name, encoder, dim, index_params, ...)",
            )
        )
        plan.repairable = False
        return plan
    for layout in config.layouts():
        vocab = path / f"lexical-{layout.name}.json"
        if layout.lexical and vocab.exists():
            try:
                read_checked_json(vocab, vocab.name)
            except DamageError as exc:
                plan.findings.append(
                    Finding(
                        vocab.name,
                        str(exc),
                        f"none: restore {vocab.name} from a backup (the BM25 field's term of "
                        "each column cannot be derived from the stored weights)",
                    )
                )
                plan.repairable = False
                return plan
    try:
        manifest = read_checked_json(path / MANIFEST, MANIFEST)
    except DamageError as exc:
        manifest = _rebuilt_manifest(path)
        plan.findings.append(
            Finding(
                MANIFEST,
                str(exc),
                f"rebuild it from the folders present: "
                f"segments {manifest['segments']}, logs from "
                f"{manifest['wal_seq']}",
            )
        )
        plan.manifest = manifest
    _check_segments(plan, manifest, config.dim, config.index_params)
    for seq, wal_file in list_wal_files(path / "wal"):
        if seq >= manifest["wal_seq"]:
            _check_wal(plan, seq, wal_file)
    if plan.drop_segments:
        kept = [s for s in manifest["segments"] if s not in plan.drop_segments]
        plan.manifest = {**manifest, "segments": kept}
    return plan


def _backup(plan: RepairPlan, backup: Path, relative: str) -> None:
    source = plan.path / relative
    target = backup / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target)
    elif source.exists():
        shutil.copy2(source, target)


def repair(plan: RepairPlan, backups: Path) -> Path:
    """Carry out ``plan``; returns the folder holding the originals of every changed file."""
    if not plan.repairable:
        raise DamageError(f"{plan.name} cannot be repaired: {plan.findings[0].problem}")
    backup = backups / f"{plan.name}-{time.strftime('%Y%m%dT%H%M%S')}"
    backup.mkdir(parents=True, exist_ok=True)
    for seq, frames in plan.rewrite_wal.items():
        name = f"wal/wal-{seq:08d}.log"
        _backup(plan, backup, name)
        _backup(plan, backup, name.replace(".log", ".mark"))
        data = b"".join(frames)
        tmp = plan.path / f"{name}.repaired"
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, plan.path / name)
        write_mark_file(plan.path / "wal", seq, len(data), len(frames))
        log.warning(
            "repair %s: rewrote %s with %d records (crc %08x)",
            plan.name,
            name,
            len(frames),
            zlib.crc32(data),
        )
    for sid in plan.reset_tombstones:
        folder = plan.path / "segments" / seg_dir(sid)
        _backup(plan, backup, f"segments/{seg_dir(sid)}/{TOMBSTONES}")
        rows = int(read_checked_json(folder / "manifest.json", "segment manifest")["rows"])
        save_tombstones(folder, np.zeros(rows, bool))
        log.warning("repair %s: reset the tombstones of %s", plan.name, seg_dir(sid))
    if plan.manifest is not None:
        _backup(plan, backup, MANIFEST)
        write_checked_json(plan.path / MANIFEST, plan.manifest)
        log.warning("repair %s: wrote %s %s", plan.name, MANIFEST, plan.manifest)
    for sid in plan.drop_segments:
        folder = plan.path / "segments" / seg_dir(sid)
        if folder.exists():
            shutil.move(str(folder), str(backup / "segments" / seg_dir(sid)))
        log.warning("repair %s: dropped %s (moved to %s)", plan.name, seg_dir(sid), backup)
    return backup
