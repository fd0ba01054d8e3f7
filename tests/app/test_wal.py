"""The write-ahead log: round trip, torn tails and corrupt records are cut, never applied."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.storage.wal import WalRecord, WriteAheadLog, list_wal_files, read_records


def _record(i: int) -> WalRecord:
    return WalRecord(
        "add",
        [f"d{i}", f"e{i}"],
        [2, 1],
        [{"i": i}, None],
        np.array([1, 5, 7], np.int32),
        np.array([0.5, 1.5, 2.0], np.float32),
    )


def test_round_trip(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 3)
    for i in range(5):
        wal.append(_record(i))
    wal.append(WalRecord("delete", ["d1"]))
    wal.close()
    records = list(read_records(tmp_path / "wal-00000003.log"))
    assert [r.op for r in records] == ["add"] * 5 + ["delete"]
    assert records[2].ids == ["d2", "e2"] and records[2].metadata == [{"i": 2}, None]
    np.testing.assert_array_equal(records[0].indices, [1, 5, 7])
    np.testing.assert_allclose(records[0].values, [0.5, 1.5, 2.0])
    assert list_wal_files(tmp_path) == [(3, tmp_path / "wal-00000003.log")]


def test_torn_tail_is_dropped_and_truncated(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 1)
    for i in range(3):
        wal.append(_record(i))
    good_size = wal.size
    wal.append(_record(3))
    wal.close()
    path = tmp_path / "wal-00000001.log"
    data = path.read_bytes()
    for cut in (good_size + 3, good_size + 9, len(data) - 1):
        path.write_bytes(data[:cut])
        assert [r.ids[0] for r in read_records(path)] == ["d0", "d1", "d2"]
        assert path.stat().st_size == good_size  # repaired: appends continue after the last record


def test_corrupt_record_ends_the_log(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path, 1)
    wal.append(_record(0))
    first = wal.size
    wal.append(_record(1))
    wal.close()
    path = tmp_path / "wal-00000001.log"
    data = bytearray(path.read_bytes())
    data[first + 20] ^= 0xFF  # flip a payload byte: the CRC no longer matches
    path.write_bytes(bytes(data))
    assert [r.ids[0] for r in read_records(path)] == ["d0"]


def test_failed_append_leaves_no_partial_record(tmp_path: Path) -> None:
    import pytest

    from app.errors import StorageError

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
    assert [r.ids[0] for r in read_records(tmp_path / "wal-00000001.log")] == ["d0", "d2"]
