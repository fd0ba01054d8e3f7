"""save/load: bit-for-bit round trip, memory-mapped arrays, damaged files refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index import IndexFormatError, SeismicIndex
from index.layout import LEGACY_NAMES
from tests.index.conftest import zipf_splade


@pytest.fixture(scope="module")
def saved(tmp_path_factory, corpus) -> tuple[SeismicIndex, Path]:
    docs, _ = corpus
    idx = SeismicIndex.build(docs)
    path = tmp_path_factory.mktemp("ix") / "segment"
    idx.save(path)
    return idx, path


def test_round_trip_bit_for_bit(saved, corpus) -> None:
    idx, path = saved
    loaded = SeismicIndex.load(path)
    assert loaded.n_docs == idx.n_docs and loaded.dim == idx.dim and loaded.params == idx.params
    for name, arr in idx.arrays.flat().items():
        assert loaded.arrays.flat()[name].dtype == arr.dtype
        np.testing.assert_array_equal(loaded.arrays.flat()[name], arr, err_msg=name)
    _, queries = corpus
    a = idx.search(queries, k=10)
    b = loaded.search(queries, k=10)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_load_memory_maps(saved) -> None:
    _, path = saved
    loaded = SeismicIndex.load(path, verify=False)
    arr = loaded.arrays.postings.postings
    assert not arr.flags.owndata and not arr.flags.writeable


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.integers(1, 200), st.integers(2, 300), st.integers(0, 2**16))
def test_round_trip_property(tmp_path, n_docs, dim, seed) -> None:
    docs = zipf_splade(n_docs, dim, 8, seed=seed)
    idx = SeismicIndex.build(docs, seed=seed)
    path = tmp_path / f"ix-{n_docs}-{dim}-{seed}"
    idx.save(path)
    loaded = SeismicIndex.load(path)
    for name, arr in idx.arrays.flat().items():
        np.testing.assert_array_equal(loaded.arrays.flat()[name], arr, err_msg=name)


def test_save_replaces_and_leaves_no_temp(tmp_path, corpus) -> None:
    docs, _ = corpus
    small = SeismicIndex.build(docs[:100])
    path = tmp_path / "seg"
    small.save(path)
    big = SeismicIndex.build(docs)
    big.save(path)
    assert SeismicIndex.load(path).n_docs == docs.shape[0]
    assert [p.name for p in tmp_path.iterdir()] == ["seg"]


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_truncated_file_refused(saved, tmp_path) -> None:
    _, path = saved
    bad = _copy(path, tmp_path / "bad")
    f = bad / "postings.postings.arrow"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(IndexFormatError, match="truncated"):
        SeismicIndex.load(bad)


def test_tampered_file_refused(saved, tmp_path) -> None:
    _, path = saved
    bad = _copy(path, tmp_path / "bad")
    f = bad / "forward.packed.arrow"
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(IndexFormatError, match="checksum"):
        SeismicIndex.load(bad)


def test_missing_file_and_bad_manifest_refused(saved, tmp_path) -> None:
    _, path = saved
    bad = _copy(path, tmp_path / "bad")
    (bad / "summaries.terms.arrow").unlink()
    with pytest.raises(IndexFormatError, match="missing"):
        SeismicIndex.load(bad)
    bad2 = _copy(path, tmp_path / "bad2")
    manifest = json.loads((bad2 / "manifest.json").read_text())
    manifest["format_version"] = 99
    (bad2 / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="version"):
        SeismicIndex.load(bad2)
    (bad2 / "manifest.json").write_text("{not json")
    with pytest.raises(IndexFormatError, match="JSON"):
        SeismicIndex.load(bad2)
    with pytest.raises(IndexFormatError, match="not an index"):
        SeismicIndex.load(tmp_path)


def test_inconsistent_arrays_refused(saved, tmp_path) -> None:
    idx, _ = saved
    postings = idx.arrays.postings.postings.copy()
    postings[0] = idx.n_docs + 10
    arrays = idx.arrays._replace(postings=idx.arrays.postings._replace(postings=postings))
    broken = SeismicIndex(arrays, idx.params, idx.n_docs, idx.dim)
    broken.save(tmp_path / "broken")
    with pytest.raises(IndexFormatError, match="out of range"):
        SeismicIndex.load(tmp_path / "broken")


def test_format_1_directory_still_loads(saved, corpus, tmp_path) -> None:
    """An index saved by format 1 (arrays under their old names, float16 weights typed
    float16, no block-max arrays) loads through the legacy name map and answers the same."""
    idx, path = saved
    old = _copy(path, tmp_path / "v1")
    manifest = json.loads((old / "manifest.json").read_text())
    entries = {}
    for name, entry in manifest["arrays"].items():
        if name.startswith("block_max."):
            (old / entry["file"]).unlink()
            continue
        legacy = LEGACY_NAMES[name]
        (old / entry["file"]).rename(old / f"{legacy}.arrow")
        entries[legacy] = {**entry, "file": f"{legacy}.arrow"}
    manifest.update(format_version=1, arrays=entries)
    (old / "manifest.json").write_text(json.dumps(manifest))
    loaded = SeismicIndex.load(old)
    assert not loaded.can_certify
    _, queries = corpus
    np.testing.assert_array_equal(loaded.search(queries, k=10)[0], idx.search(queries, k=10)[0])


def test_prefaulted_load_answers_the_same(saved, corpus) -> None:
    idx, path = saved
    _, queries = corpus
    warm = SeismicIndex.load(path, prefault=True)
    np.testing.assert_array_equal(warm.search(queries, k=10)[0], idx.search(queries, k=10)[0])
