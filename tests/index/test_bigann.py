"""big-ann sparse format: round trips and clear errors on damaged files (never a silent cut)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from index.bigann import (
    BigAnnFormatError,
    CsrWriter,
    csr_file_bytes,
    read_csr,
    read_gt,
    write_csr,
    write_gt,
)


def random_csr(n_rows: int, n_cols: int, seed: int, empty_rows: bool = True) -> sp.csr_array:
    rng = np.random.default_rng(seed)
    m = sp.random_array((n_rows, n_cols), density=0.1, format="csr", rng=rng, dtype=np.float32)
    if empty_rows:
        m = sp.csr_array(sp.vstack([m, sp.csr_array((1, n_cols), dtype=np.float32)]))
    m.sort_indices()
    return m


def assert_same(a: sp.csr_array, b: sp.csr_array) -> None:
    assert a.shape == b.shape
    np.testing.assert_array_equal(np.asarray(a.indptr, np.int64), np.asarray(b.indptr, np.int64))
    np.testing.assert_array_equal(np.asarray(a.indices), np.asarray(b.indices))
    np.testing.assert_array_equal(np.asarray(a.data, np.float32), np.asarray(b.data, np.float32))


def test_csr_round_trip_layout_and_slices(tmp_path: Path) -> None:
    m = random_csr(40, 70, seed=1)
    path = write_csr(tmp_path / "m.csr", m)
    raw = path.read_bytes()
    assert len(raw) == csr_file_bytes(41, m.nnz)
    # The header is three little-endian int64 values, then indptr as int64.
    assert np.frombuffer(raw[:24], "<i8").tolist() == [41, 70, m.nnz]
    np.testing.assert_array_equal(np.frombuffer(raw[24 : 24 + 8 * 42], "<i8"), m.indptr)
    f = read_csr(path)
    assert f.shape == (41, 70) and f.nnz == m.nnz
    assert isinstance(f.indices, np.memmap) and f.indices.dtype == np.dtype("<i4")
    assert_same(f.to_scipy(), m)
    assert_same(f.rows(7, 23), m[7:23])
    assert_same(f.rows(40, 41), m[40:41])
    assert not list(tmp_path.glob(".*.tmp"))


def test_streaming_writer_equals_whole_writer(tmp_path: Path) -> None:
    m = random_csr(50, 30, seed=2)
    with CsrWriter(tmp_path / "s.csr", 51, 30, m.nnz) as w:
        for a in range(0, 51, 13):
            w.append(m[a : a + 13])
    write_csr(tmp_path / "w.csr", m)
    assert (tmp_path / "s.csr").read_bytes() == (tmp_path / "w.csr").read_bytes()


def test_streaming_writer_refuses_short_or_long_input(tmp_path: Path) -> None:
    m = random_csr(20, 30, seed=3, empty_rows=False)
    with (
        pytest.raises(ValueError, match="wrote 10 rows"),
        CsrWriter(tmp_path / "short.csr", 20, 30, m.nnz) as w,
    ):
        w.append(m[:10])
        w.close()
    assert not (tmp_path / "short.csr").exists()
    with (
        pytest.raises(ValueError, match="more than the announced"),
        CsrWriter(tmp_path / "long.csr", 10, 30, m.nnz) as w,
    ):
        w.append(m)
    assert not list(tmp_path.iterdir())


def test_empty_matrix_round_trip(tmp_path: Path) -> None:
    m = sp.csr_array((3, 5), dtype=np.float32)
    f = read_csr(write_csr(tmp_path / "e.csr", m))
    assert f.shape == (3, 5) and f.nnz == 0
    assert_same(f.to_scipy(), m)


@pytest.fixture()
def good_file(tmp_path: Path) -> tuple[Path, sp.csr_array]:
    m = random_csr(30, 40, seed=4)
    return write_csr(tmp_path / "good.csr", m), m


def damaged(path: Path, raw: bytes) -> Path:
    out = path.with_name("bad.csr")
    out.write_bytes(raw)
    return out


@pytest.mark.parametrize("keep", [0, 10, 23])
def test_truncated_header(good_file: tuple[Path, sp.csr_array], keep: int) -> None:
    path, _ = good_file
    with pytest.raises(BigAnnFormatError, match="truncated header"):
        read_csr(damaged(path, path.read_bytes()[:keep]))


@pytest.mark.parametrize("cut", [1, 4, 200])
def test_truncated_body(good_file: tuple[Path, sp.csr_array], cut: int) -> None:
    path, m = good_file
    raw = path.read_bytes()
    with pytest.raises(BigAnnFormatError, match=f"truncated: header says 31 rows and {m.nnz}"):
        read_csr(damaged(path, raw[:-cut]))


def test_trailing_bytes(good_file: tuple[Path, sp.csr_array]) -> None:
    path, _ = good_file
    with pytest.raises(BigAnnFormatError, match="trailing bytes"):
        read_csr(damaged(path, path.read_bytes() + b"\0" * 8))


def patch(raw: bytes, offset: int, value: int, dtype: str) -> bytes:
    b = bytearray(raw)
    width = np.dtype(dtype).itemsize
    b[offset : offset + width] = np.array([value], dtype=dtype).tobytes()
    return bytes(b)


def test_header_nnz_disagrees_with_size(good_file: tuple[Path, sp.csr_array]) -> None:
    path, m = good_file
    with pytest.raises(BigAnnFormatError, match="truncated"):
        read_csr(damaged(path, patch(path.read_bytes(), 16, m.nnz + 1, "<i8")))


def test_negative_header(good_file: tuple[Path, sp.csr_array]) -> None:
    path, _ = good_file
    with pytest.raises(BigAnnFormatError, match="negative header"):
        read_csr(damaged(path, patch(path.read_bytes(), 0, -1, "<i8")))


def test_indptr_inconsistent(good_file: tuple[Path, sp.csr_array]) -> None:
    path, m = good_file
    raw = path.read_bytes()
    last = 24 + 8 * 31
    with pytest.raises(BigAnnFormatError, match="indptr runs from 0 to"):
        read_csr(damaged(path, patch(raw, last, m.nnz - 1, "<i8")))
    with pytest.raises(BigAnnFormatError, match="indptr runs from 3"):
        read_csr(damaged(path, patch(raw, 24, 3, "<i8")))
    row5 = 24 + 8 * 5
    with pytest.raises(BigAnnFormatError, match="indptr decreases at row"):
        read_csr(damaged(path, patch(raw, row5, m.nnz, "<i8")))


def test_column_out_of_range(good_file: tuple[Path, sp.csr_array]) -> None:
    path, m = good_file
    first_index = 24 + 8 * 32
    bad = damaged(path, patch(path.read_bytes(), first_index + 4 * 3, 40, "<i4"))
    with pytest.raises(BigAnnFormatError, match="column id 40 at entry 3 outside"):
        read_csr(bad)
    assert read_csr(bad, check_indices=False).nnz == m.nnz


def test_gt_round_trip_and_damage(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 1000, (7, 10)).astype(np.int32)
    ids[3, 8:] = -1
    scores = -np.sort(-rng.random((7, 10)).astype(np.float32), axis=1)
    path = write_gt(tmp_path / "gt.bin", ids, scores)
    raw = path.read_bytes()
    assert np.frombuffer(raw[:8], "<u4").tolist() == [7, 10]
    assert len(raw) == 8 + 8 * 70
    got_ids, got_scores = read_gt(path)
    np.testing.assert_array_equal(got_ids, ids)
    np.testing.assert_array_equal(got_scores, scores)
    with pytest.raises(BigAnnFormatError, match="truncated header"):
        read_gt(damaged(path, raw[:5]))
    with pytest.raises(BigAnnFormatError, match="truncated: header says 7 queries x k 10"):
        read_gt(damaged(path, raw[:-4]))
    with pytest.raises(BigAnnFormatError, match="trailing bytes"):
        read_gt(damaged(path, raw + b"\0"))
    with pytest.raises(ValueError, match="equal 2-D shapes"):
        write_gt(tmp_path / "x.bin", ids, scores[:, :5])
