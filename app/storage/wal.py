"""Write-ahead log: length- and CRC-framed records, fsynced before a write is acknowledged.

Frame: ``u32 payload_len | u32 crc32(payload) | payload``. Payload: ``u32 header_len | header
JSON | int32 indices | float32 values``. On replay a record that is cut short or whose CRC
does not match ends the log: it (and anything after it) is truncated away, never half-applied.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import StorageError
from app.storage.files import fsync_dir

log = logging.getLogger(__name__)

_FRAME = struct.Struct("<II")
_U32 = struct.Struct("<I")
WAL_PREFIX = "wal-"
WAL_SUFFIX = ".log"


@dataclass
class WalRecord:
    """One logged operation: ``op`` is ``add``, ``upsert`` or ``delete``.

    For adds, ``lengths[i]`` non-zeros of ``indices``/``values`` belong to ``ids[i]``.
    """

    op: str
    ids: list[str]
    lengths: list[int] = field(default_factory=list)
    metadata: list[Any] = field(default_factory=list)
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def encode(self) -> bytes:
        header = json.dumps(
            {"op": self.op, "ids": self.ids, "lengths": self.lengths, "metadata": self.metadata},
            separators=(",", ":"),
            allow_nan=False,
        ).encode()
        indices = np.ascontiguousarray(self.indices, dtype="<i4").tobytes()
        values = np.ascontiguousarray(self.values, dtype="<f4").tobytes()
        return _U32.pack(len(header)) + header + indices + values

    @classmethod
    def decode(cls, payload: bytes) -> WalRecord:
        (header_len,) = _U32.unpack_from(payload, 0)
        header = json.loads(payload[4 : 4 + header_len])
        rest = payload[4 + header_len :]
        nnz = len(rest) // 8
        indices = np.frombuffer(rest, dtype="<i4", count=nnz).astype(np.int32)
        values = np.frombuffer(rest, dtype="<f4", count=nnz, offset=4 * nnz).astype(np.float32)
        return cls(
            op=header["op"],
            ids=header["ids"],
            lengths=header.get("lengths", []),
            metadata=header.get("metadata", []),
            indices=indices,
            values=values,
        )


def wal_path(folder: Path, seq: int) -> Path:
    return folder / f"{WAL_PREFIX}{seq:08d}{WAL_SUFFIX}"


def list_wal_files(folder: Path) -> list[tuple[int, Path]]:
    """``(seq, path)`` of every log file in ``folder``, oldest first."""
    out = []
    for path in folder.glob(f"{WAL_PREFIX}*{WAL_SUFFIX}"):
        stem = path.name[len(WAL_PREFIX) : -len(WAL_SUFFIX)]
        if stem.isdigit():
            out.append((int(stem), path))
    return sorted(out)


def read_records(path: Path, *, repair: bool = True) -> Iterator[WalRecord]:
    """Yield the complete records of ``path``; a torn or corrupt tail is cut off (``repair``)."""
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        if offset + _FRAME.size > len(data):
            break
        length, crc = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        try:
            record = WalRecord.decode(payload)
        except (ValueError, KeyError, json.JSONDecodeError):
            break
        yield record
        offset = start + length
    if offset < len(data):
        log.warning("wal %s: dropping %d torn bytes at offset %d", path, len(data) - offset, offset)
        if repair:
            with open(path, "r+b") as handle:
                handle.truncate(offset)
                handle.flush()
                os.fsync(handle.fileno())


class WriteAheadLog:
    """An append-only log file; :meth:`append` returns only once the record is on disk."""

    def __init__(self, folder: Path, seq: int) -> None:
        self.folder = folder
        self.seq = seq
        self.path = wal_path(folder, seq)
        created = not self.path.exists()
        self._handle = open(self.path, "ab")  # noqa: SIM115 - closed in close()
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

    @property
    def size(self) -> int:
        return self._handle.tell()

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()
