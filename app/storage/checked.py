"""Checksummed files: every file a collection reads is verified before it is trusted.

- JSON documents (``config.json``, ``manifest.json``, WAL marks) carry a ``checksum`` field:
  CRC-32 of their other fields in canonical form.
- Arrays are Arrow IPC files (one column, uncompressed, memory-mappable) listed in a folder's
  manifest with their size and CRC-32, as the index's own files are.
- Small binary files (tombstones) end with a CRC-32 of their bytes.

A file that fails its check raises :class:`DamageError`, whose message names the file (relative
to the collection) and what is wrong, for the quarantine answer and ``lsr repair``.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from app.storage.files import write_bytes_atomic
from index.storage import crc32_file

_CRC = struct.Struct("<I")


class DamageError(ValueError):
    """A collection file is missing, truncated, tampered with or inconsistent."""


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def write_checked_json(path: Path, body: dict[str, Any]) -> None:
    """``body`` plus its ``checksum``, written atomically (temporary file, fsync, rename)."""
    doc = {**body, "checksum": zlib.crc32(_canonical(body))}
    write_bytes_atomic(path, json.dumps(doc, indent=1, sort_keys=True, allow_nan=False).encode())


def read_checked_json(path: Path, name: str) -> dict[str, Any]:
    """The fields of a file written by :func:`write_checked_json`, checksum verified;
    ``name`` is how the file is called in errors."""
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise DamageError(f"{name} is missing") from None
    except (OSError, ValueError) as exc:
        raise DamageError(f"{name} is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or "checksum" not in doc:
        raise DamageError(f"{name} has no checksum")
    body = {k: v for k, v in doc.items() if k != "checksum"}
    if zlib.crc32(_canonical(body)) != doc["checksum"]:
        raise DamageError(f"{name} fails its checksum")
    return body


def write_array(path: Path, values: np.ndarray | list[str]) -> dict[str, Any]:
    """One Arrow IPC file of one column (numbers, or strings); returns its manifest entry."""
    array = pa.array(values, pa.large_string()) if isinstance(values, list) else pa.array(values)
    batch = pa.record_batch([array], names=["v"])
    with open(path, "wb") as handle:
        with pa.ipc.new_file(handle, batch.schema) as writer:
            writer.write_batch(batch)
        handle.flush()
        os.fsync(handle.fileno())
    return {"bytes": path.stat().st_size, "crc32": crc32_file(path), "length": len(array)}


def verify_file(path: Path, entry: dict[str, Any], name: str) -> None:
    """``path`` has the size and CRC-32 its manifest ``entry`` records."""
    if not path.is_file():
        raise DamageError(f"{name} is missing")
    if path.stat().st_size != entry.get("bytes"):
        raise DamageError(f"{name} has {path.stat().st_size} bytes, {entry.get('bytes')} expected")
    if crc32_file(path) != entry.get("crc32"):
        raise DamageError(f"{name} fails its checksum")


def read_array(path: Path, name: str) -> pa.Array:
    """The column of an Arrow IPC file (memory-mapped; verify it first)."""
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
        return reader.get_batch(0).column(0)
    except (OSError, pa.ArrowException, IndexError) as exc:
        raise DamageError(f"{name} is not a readable Arrow file ({type(exc).__name__})") from None


def write_checked_bytes(path: Path, payload: bytes) -> None:
    """``payload`` followed by its CRC-32, written atomically."""
    write_bytes_atomic(path, payload + _CRC.pack(zlib.crc32(payload)))


def read_checked_bytes(path: Path, name: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DamageError(f"{name} is missing") from None
    payload, trailer = data[: -_CRC.size], data[-_CRC.size :]
    if len(data) < _CRC.size or zlib.crc32(payload) != _CRC.unpack(trailer)[0]:
        raise DamageError(f"{name} fails its checksum")
    return payload
