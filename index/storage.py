"""On-disk format: one directory, one Arrow IPC file per array, and ``manifest.json``.

Arrays are written uncompressed so that loading memory-maps them without a copy. The
manifest records the format version, parameters, counts, and each file's size, dtype,
length and CRC-32; a file that does not match is refused with :class:`IndexFormatError`.
A save goes to a temporary sibling directory, is fsynced, then renamed into place, so a
crash never leaves a half-written index under the final name.
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

FORMAT_NAME = "lsr-seismic-index"
FORMAT_VERSION = 3
# Older versions this code still reads: 1 stored the arrays under other names, 1 and 2
# lack the block-max arrays of version 3 (see load_arrays' ``optional``).
READABLE_VERSIONS = (1, 2, 3)
MANIFEST = "manifest.json"


class IndexFormatError(ValueError):
    """An index directory is missing, truncated, tampered with, or of another version."""


def crc32_file(path: Path) -> int:
    """CRC-32 of a file's bytes, read in 4 MiB chunks (the manifest's checksum)."""
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_array(path: Path, array: np.ndarray) -> None:
    batch = pa.record_batch([pa.array(np.ascontiguousarray(array))], names=["v"])
    with open(path, "wb") as f:
        with pa.ipc.new_file(f, batch.schema) as writer:
            writer.write_batch(batch)  # exactly one batch, even when empty
        f.flush()
        os.fsync(f.fileno())


@dataclass(frozen=True)
class ArrayParts:
    """A large array given as consecutive parts, written without ever being whole in
    memory: ``parts()`` yields arrays of ``dtype`` whose lengths add up to ``length``."""

    dtype: np.dtype
    length: int
    parts: Callable[[], Iterator[np.ndarray]]


def _write_parts(path: Path, array: ArrayParts) -> None:
    """Write an Arrow IPC file for ``array`` part by part.

    Arrow's writer is given a zeroed array of the final length (calloc'd pages that are
    never touched cost no memory), which lays out the header, the body and the footer;
    the parts then overwrite the body in place.
    """
    _write_array(path, np.zeros(array.length, dtype=array.dtype))
    with open(path, "r+b") as f:
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            buf = pa.py_buffer(m)
            column = pa.ipc.open_file(buf).get_batch(0).column(0)
            start = column.buffers()[1].address - buf.address if array.length else 0
            del column, buf
        pos = 0
        for part in array.parts():
            part = np.ascontiguousarray(part, dtype=array.dtype)
            if pos + part.shape[0] > array.length:
                raise ValueError(f"{path.name}: parts exceed the declared length {array.length}")
            os.pwrite(f.fileno(), part.tobytes(), start + pos * part.itemsize)
            pos += part.shape[0]
        if pos != array.length:
            raise ValueError(f"{path.name}: parts hold {pos} values, declared {array.length}")
        f.flush()
        os.fsync(f.fileno())


def save_arrays(
    path: str | os.PathLike, arrays: dict[str, np.ndarray | ArrayParts], meta: dict
) -> None:
    """Write ``arrays`` and a manifest holding ``meta`` to directory ``path`` atomically.

    An :class:`ArrayParts` value is written part by part (never whole in memory)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        entries = {}
        for name, array in arrays.items():
            file = tmp / f"{name}.arrow"
            if isinstance(array, ArrayParts):
                _write_parts(file, array)
                length = array.length
            else:
                _write_array(file, array)
                length = int(array.shape[0])
            entries[name] = {
                "file": file.name,
                "dtype": np.dtype(array.dtype).str,
                "length": length,
                "bytes": file.stat().st_size,
                "crc32": crc32_file(file),
            }
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            **meta,
            "arrays": entries,
        }
        with open(tmp / MANIFEST, "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        old = None
        if final.exists():
            old = final.parent / f".{final.name}.old-{uuid.uuid4().hex}"
            os.rename(final, old)
        os.rename(tmp, final)
        _fsync_dir(final.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_manifest(path: str | os.PathLike) -> dict:
    """The parsed manifest of index directory ``path`` (format and version checked)."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise IndexFormatError(f"{path} is not an index directory: no {MANIFEST}")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{file} is not a {FORMAT_NAME} manifest")
    if manifest.get("format_version") not in READABLE_VERSIONS:
        raise IndexFormatError(
            f"{path} has format version {manifest.get('format_version')!r}; "
            f"this code reads versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
    if not isinstance(manifest.get("arrays"), dict):
        raise IndexFormatError(f"{file} lists no arrays")
    return manifest


def load_arrays(
    path: str | os.PathLike,
    names: tuple[str, ...],
    verify: bool = True,
    legacy_names: dict[str, str] | None = None,
    optional: tuple[str, ...] = (),
) -> tuple[dict[str, np.ndarray], dict]:
    """Memory-map the arrays ``names`` of index directory ``path``; returns (arrays, manifest).

    With ``verify`` every file's CRC-32 is checked (reads each file once). A version-1
    directory stored array ``name`` as ``legacy_names[name]``. Arrays in ``optional`` may
    be absent from a directory of an older version than :data:`FORMAT_VERSION` (they are
    then left out of the result); in a current one every name is required.
    """
    root = Path(path)
    manifest = read_manifest(root)
    old = manifest["format_version"] == 1 and legacy_names is not None
    older = manifest["format_version"] < FORMAT_VERSION
    arrays = {}
    for name in names:
        entry = manifest["arrays"].get(legacy_names.get(name, name) if old else name)
        if entry is None and older and name in optional:
            continue
        if not isinstance(entry, dict):
            raise IndexFormatError(f"{root} manifest has no array {name!r}")
        file = root / str(entry.get("file", ""))
        if file.parent != root or not file.is_file():
            raise IndexFormatError(f"{root}: array file for {name!r} is missing")
        if file.stat().st_size != entry.get("bytes"):
            raise IndexFormatError(
                f"{file} has {file.stat().st_size} bytes, manifest says {entry.get('bytes')} "
                "(truncated or modified)"
            )
        if verify and crc32_file(file) != entry.get("crc32"):
            raise IndexFormatError(f"{file} fails its checksum (corrupted or modified)")
        try:
            reader = pa.ipc.open_file(pa.memory_map(str(file), "r"))
            if reader.num_record_batches != 1:
                raise IndexFormatError(f"{file} must hold exactly one record batch")
            column = reader.get_batch(0).column(0)
            array = column.to_numpy(zero_copy_only=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, IndexError) as exc:
            raise IndexFormatError(f"{file} is not a readable Arrow IPC array: {exc}") from None
        if array.dtype.str != entry.get("dtype") or array.shape[0] != entry.get("length"):
            raise IndexFormatError(
                f"{file} holds {array.dtype.str}[{array.shape[0]}], manifest says "
                f"{entry.get('dtype')}[{entry.get('length')}]"
            )
        if array.dtype == np.float16:  # version 1 kept float16 weights as float16
            array = array.view(np.uint16)
        arrays[name] = array
    return arrays, manifest


def update_manifest(path: str | os.PathLike, meta: dict) -> None:
    """Merge ``meta`` into the manifest of index directory ``path`` (the arrays and their
    checksums are untouched), atomically: a temporary file, fsynced, renamed over it."""
    root = Path(path)
    manifest = read_manifest(root)
    manifest.update(meta)
    tmp = root / f".{MANIFEST}.tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, root / MANIFEST)
        _fsync_dir(root)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
