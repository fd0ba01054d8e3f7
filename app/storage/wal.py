"""Write-ahead log: length- and CRC-framed records, fsynced before a write is acknowledged.

Frame: ``u32 payload_len | u32 crc32(payload) | payload``. Payload: ``u32 header_len | header
JSON | int32 indices | float32 values``; the header starts with ``{"op":``.

Beside each log file, ``wal-N.mark`` records how many bytes and records of it were
acknowledged (fsynced) at some recent moment: the maintenance thread rewrites it about once a
second, and closing the log writes the final one. Replay never cuts a log. What it tolerates
is a *torn* last record past the mark, which is what a crash in the middle of an append
leaves (never acknowledged): it is ignored and the next appends go to a new file. Anything
else (a bad record with data after it, a log shorter than its mark, a damaged mark) is
damage: :class:`DamageError`, files untouched, until ``lsr repair``.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from app.errors import StorageError
from app.storage.batch import DocumentBatch
from app.storage.checked import DamageError, read_checked_json, write_checked_json
from app.storage.files import fsync_dir

log = logging.getLogger(__name__)

_FRAME = struct.Struct("<II")
_U32 = struct.Struct("<I")
WAL_PREFIX = "wal-"
WAL_SUFFIX = ".log"
HEADER_START = b'{"op":'


@dataclass
class WalRecord:
    """One logged operation: ``op`` is ``add``, ``upsert`` or ``delete``.

    For adds, ``lengths[i]`` non-zeros of ``indices``/``values`` belong to ``ids[i]``;
    ``vocab`` holds the new terms of live BM25 fields that the write introduced (field ->
    ``[column, term]`` pairs), so that the documents and their terms are logged together.
    """

    op: str
    ids: list[str]
    lengths: list[int] = field(default_factory=list)
    metadata: list[Any] = field(default_factory=list)
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    vocab: dict[str, list[list]] | None = None

    @classmethod
    def of_batch(cls, op: str, batch: DocumentBatch) -> WalRecord:
        """The record of a write, straight from the batch's CSR arrays."""
        vectors = batch.vectors
        return cls(
            op,
            batch.doc_ids,
            batch.lengths.tolist(),
            batch.metadata,
            vectors.indices,
            vectors.data,
            batch.vocab or None,
        )

    def batch(self, dim: int) -> DocumentBatch:
        """The logged write as a batch again (already quantised)."""
        indptr = np.zeros(len(self.lengths) + 1, np.int64)
        np.cumsum(self.lengths, out=indptr[1:])
        vectors = sp.csr_array((self.values, self.indices, indptr), shape=(len(self.ids), dim))
        vectors.indices = vectors.indices.astype(np.int32, copy=False)
        return DocumentBatch(self.ids, vectors, self.metadata, vocab=self.vocab)

    def encode(self) -> bytes:
        body = {"op": self.op, "ids": self.ids, "lengths": self.lengths, "metadata": self.metadata}
        if self.vocab:
            body["vocab"] = self.vocab
        header = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
        indices = np.ascontiguousarray(self.indices, dtype="<i4").tobytes()
        values = np.ascontiguousarray(self.values, dtype="<f4").tobytes()
        return _U32.pack(len(header)) + header + indices + values

    @classmethod
    def decode(cls, payload: bytes) -> WalRecord:
        (header_len,) = _U32.unpack_from(payload, 0)
        header = json.loads(payload[4 : 4 + header_len])
        rest = payload[4 + header_len :]
        nnz = len(rest) // 8
        if len(rest) != 8 * nnz or sum(header.get("lengths", [])) != nnz:
            raise ValueError("vector bytes do not match the header's lengths")
        indices = np.frombuffer(rest, dtype="<i4", count=nnz).astype(np.int32)
        values = np.frombuffer(rest, dtype="<f4", count=nnz, offset=4 * nnz).astype(np.float32)
        return cls(
            op=header["op"],
            ids=header["ids"],
            lengths=header.get("lengths", []),
            metadata=header.get("metadata", []),
            indices=indices,
            values=values,
            vocab=header.get("vocab"),
        )


def wal_path(folder: Path, seq: int) -> Path:
    return folder / f"{WAL_PREFIX}{seq:08d}{WAL_SUFFIX}"


def mark_path(folder: Path, seq: int) -> Path:
    return folder / f"{WAL_PREFIX}{seq:08d}.mark"


def list_wal_files(folder: Path) -> list[tuple[int, Path]]:
    """``(seq, path)`` of every log file in ``folder``, oldest first."""
    out = []
    for path in folder.glob(f"{WAL_PREFIX}*{WAL_SUFFIX}"):
        stem = path.name[len(WAL_PREFIX) : -len(WAL_SUFFIX)]
        if stem.isdigit():
            out.append((int(stem), path))
    return sorted(out)


def read_mark(folder: Path, seq: int) -> tuple[int, int]:
    """``(acknowledged bytes, records)`` of log ``seq`` (0, 0 when it has no mark yet)."""
    path = mark_path(folder, seq)
    if not path.exists():
        return 0, 0
    body = read_checked_json(path, f"wal/{path.name}")
    return int(body["bytes"]), int(body["records"])


def write_mark_file(folder: Path, seq: int, acked_bytes: int, records: int) -> None:
    write_checked_json(mark_path(folder, seq), {"bytes": acked_bytes, "records": records})


def frame_at(data: bytes, offset: int) -> tuple[WalRecord | None, int]:
    """The record whose frame starts at ``offset`` and the offset after it; ``(None, end)``
    when the frame is cut short by the end of ``data``; ``ValueError`` when it is corrupt."""
    if offset + _FRAME.size > len(data):
        return None, len(data)
    length, crc = _FRAME.unpack_from(data, offset)
    start = offset + _FRAME.size
    if start + length > len(data):
        return None, len(data)
    payload = data[start : start + length]
    if zlib.crc32(payload) != crc:
        raise ValueError("fails its checksum")
    try:
        return WalRecord.decode(payload), start + length
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise ValueError(f"cannot be decoded ({type(exc).__name__})") from None


@dataclass
class WalScan:
    """A log read for replay: its records, where they end, and a torn tail's size."""

    records: list[WalRecord]
    valid_end: int
    torn_bytes: int = 0


def scan_wal(path: Path, acked_bytes: int) -> WalScan:
    """Every record of ``path``; a torn last record past ``acked_bytes`` is left out (not
    cut). Raises :class:`DamageError` for anything else that is wrong."""
    name = f"wal/{path.name}"
    data = path.read_bytes()
    records: list[WalRecord] = []
    offset = 0
    while offset < len(data):
        try:
            record, end = frame_at(data, offset)
        except ValueError as exc:
            # a whole-length record at the very end past the mark: a torn write under power
            # loss (its bytes never all reached the disk); anywhere else it is damage
            length = _FRAME.unpack_from(data, offset)[0]
            if offset >= acked_bytes and offset + _FRAME.size + length == len(data):
                return WalScan(records, offset, len(data) - offset)
            raise DamageError(f"{name}: the record at byte {offset} {exc}") from None
        if record is None:
            if offset >= acked_bytes:
                return WalScan(records, offset, len(data) - offset)
            raise DamageError(
                f"{name}: the log ends inside a record at byte {offset}, but {acked_bytes} "
                "bytes were acknowledged (truncated)"
            )
        records.append(record)
        offset = end
    if len(data) < acked_bytes:
        raise DamageError(f"{name}: {len(data)} bytes, but {acked_bytes} were acknowledged")
    return WalScan(records, offset)


def recover_records(data: bytes) -> Iterator[tuple[int, int, WalRecord | None]]:
    """Every readable record of a damaged log and every unreadable stretch, in order:
    ``(start, end, record)`` with ``record`` None for a stretch that could not be read.
    After a bad frame, reading resumes at the next offset where a whole frame checks out."""
    offset = 0
    while offset < len(data):
        try:
            record, end = frame_at(data, offset)
        except ValueError:
            record, end = None, -1
        if record is not None:
            yield offset, end, record
            offset = end
            continue
        resume = _next_frame(data, offset + 1)
        yield offset, resume, None
        offset = resume


def _next_frame(data: bytes, start: int) -> int:
    """The first offset >= ``start`` where a whole, valid frame begins (else len(data))."""
    pos = data.find(HEADER_START, start + _FRAME.size + _U32.size)
    while pos != -1:
        offset = pos - _U32.size - _FRAME.size
        try:
            record, _ = frame_at(data, offset)
        except ValueError:
            record = None
        if record is not None:
            return offset
        pos = data.find(HEADER_START, pos + 1)
    return len(data)


class WriteAheadLog:
    """An append-only log file; :meth:`append` returns only once the record is on disk."""

    def __init__(self, folder: Path, seq: int, records: int = 0) -> None:
        """Open log ``seq`` for appending after its ``records`` existing records."""
        self.folder = folder
        self.seq = seq
        self.path = wal_path(folder, seq)
        created = not self.path.exists()
        self._handle = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        self.acked_bytes = self._handle.tell()
        self.acked_records = records
        self._marked = (-1, -1)
        self._mark_lock = threading.Lock()
        if created:
            fsync_dir(folder)

    def append(self, record: WalRecord) -> None:
        """Append and fsync; on failure the partial record is cut off again, so that a later
        acknowledged record never sits behind garbage (which replay would stop at)."""
        payload = record.encode()
        offset = self._handle.tell()
        try:
            self._handle.write(_FRAME.pack(len(payload), zlib.crc32(payload)) + payload)
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            try:
                self._handle.truncate(offset)
                self._handle.seek(offset)
                os.fsync(self._handle.fileno())
            except OSError:
                self._handle.close()  # no further appends to a log in an unknown state
            raise StorageError(f"write-ahead log append failed: {exc}") from exc
        self.acked_bytes = self._handle.tell()
        self.acked_records += 1

    def write_mark(self, acked: tuple[int, int] | None = None) -> None:
        """Record the acknowledged size (``acked``: bytes, records; default the current)."""
        acked = acked or (self.acked_bytes, self.acked_records)
        with self._mark_lock:
            if acked == self._marked:
                return
            write_mark_file(self.folder, self.seq, *acked)
            self._marked = acked

    @property
    def size(self) -> int:
        return self.acked_bytes

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()
            self.write_mark()
