"""The write-ahead log: round trip; a torn last record past the mark is ignored, never cut;
any other damage is a DamageError with the file untouched; recovery reads past damage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.errors import StorageError
from app.storage.checked import DamageError
from app.storage.wal import (
    WalRecord,
    WriteAheadLog,
    list_wal_files,
    read_mark,
    recover_records,
    scan_wal,
)


def _record(i: int) -> WalRecord:
    return WalRecord(
        "add",
        [f"d{i}", f"e{i}"],
        [2, 1],
        [{"i": i}, None],
        np.array([1, 5, 7], np.int32),
        np.array([0.5, 1.5, 2.0], np.float32),
    )


def _log(tmp_path: Path, n: int) -> tuple[Path, list[int]]:
    """A closed log of ``n`` records (its mark written at close) and each record's end."""
    wal = WriteAheadLog(tmp_path, 1)
    ends = []
    for i in range(n):
        wal.append(_record(i))
        ends.append(wal.size)
    wal.close()
    return tmp_path / "wal-00000001.log", ends


def test_round_trip_and_mark(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 3)
    for i in range(5):
        wal.append(_record(i))
    wal.append(WalRecord("delete", ["d1"]))
    wal.close()
    path = tmp_path / "wal-00000003.log"
    scan = scan_wal(path, read_mark(tmp_path, 3)[0])
    assert [r.op for r in scan.records] == ["add"] * 5 + ["delete"]
    assert scan.records[2].ids == ["d2", "e2"] and scan.records[2].metadata == [{"i": 2}, None]
    np.testing.assert_array_equal(scan.records[0].indices, [1, 5, 7])
    np.testing.assert_allclose(scan.records[0].values, [0.5, 1.5, 2.0])
    assert read_mark(tmp_path, 3) == (path.stat().st_size, 6)
    assert list_wal_files(tmp_path) == [(3, path)]


def test_a_torn_last_record_past_the_mark_is_ignored_not_cut(tmp_path: Path) -> None:
    path, ends = _log(tmp_path, 4)
    data = path.read_bytes()
    for cut in (ends[2] + 3, ends[2] + 9, len(data) - 1):
        path.write_bytes(data[:cut])
        scan = scan_wal(path, acked_bytes=ends[2])  # the mark: three records acknowledged
        assert [r.ids[0] for r in scan.records] == ["d0", "d1", "d2"]
        assert (scan.valid_end, scan.torn_bytes) == (ends[2], cut - ends[2])
        assert path.stat().st_size == cut  # the file is left as it is


def test_truncation_below_the_mark_is_damage(tmp_path: Path) -> None:
    path, ends = _log(tmp_path, 4)
    data = path.read_bytes()
    path.write_bytes(data[: ends[1] + 5])  # cut inside the third of four acknowledged records
    with pytest.raises(DamageError, match="truncated"):
        scan_wal(path, read_mark(tmp_path, 1)[0])
    path.write_bytes(data[: ends[1]])  # cut exactly between records, still short of the mark
    with pytest.raises(DamageError, match="acknowledged"):
        scan_wal(path, read_mark(tmp_path, 1)[0])


def test_a_corrupt_record_with_records_after_it_is_damage(tmp_path: Path) -> None:
    path, ends = _log(tmp_path, 6)
    data = bytearray(path.read_bytes())
    data[ends[1] + 20] ^= 0xFF  # a payload byte of the third record
    path.write_bytes(bytes(data))
    with pytest.raises(DamageError, match=f"record at byte {ends[1]} fails its checksum"):
        scan_wal(path, acked_bytes=0)  # even without a mark: records follow the bad one
    assert path.read_bytes() == bytes(data)


def test_recovery_reads_on_after_a_damaged_stretch(tmp_path: Path) -> None:
    path, ends = _log(tmp_path, 6)
    data = bytearray(path.read_bytes())
    third = len(data) // 3
    data[third : third + 8] = b"\x00" * 8  # 8 bytes flipped at a third of the log
    parts = list(recover_records(bytes(data)))
    good = [r.ids[0] for _, _, r in parts if r is not None]
    bad = [(a, b) for a, b, r in parts if r is None]
    lost = [i for i in range(6) if f"d{i}" not in good]
    assert len(lost) == 1 and len(bad) == 1  # only the record holding those bytes is lost
    start, end = bad[0]
    assert (start, end) == ((ends[lost[0] - 1] if lost[0] else 0), ends[lost[0]])


def test_failed_append_leaves_no_partial_record(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 1)
    wal.append(_record(0))
    size = wal.size
    real = wal._handle

    class FullDisk:
        """The real file handle whose fsync fails, as on a full or failing disk."""

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def flush(self) -> None:
            real.flush()
            raise OSError(28, "No space left on device")

    wal._handle = FullDisk()
    with pytest.raises(StorageError):
        wal.append(_record(1))
    wal._handle = real
    assert wal.size == size
    wal.append(_record(2))
    wal.close()
    scan = scan_wal(tmp_path / "wal-00000001.log", read_mark(tmp_path, 1)[0])
    assert [r.ids[0] for r in scan.records] == ["d0", "d2"]
