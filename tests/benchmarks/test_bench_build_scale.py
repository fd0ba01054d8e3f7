"""bench_build_scale.py end to end on tiny corpora: child processes, reuse, JSON."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench_build_scale, scale_processes
from benchmarks.build_runner import vm_status_mb
from index import SeismicIndex
from index.bigann import read_csr, read_gt

pytestmark = pytest.mark.slow


def run(tmp_path: Path, tiny_vectors: Path, *extra: str) -> dict:
    out = tmp_path / "result.json"
    argv = ["--vectors-dir", str(tiny_vectors), "--work-dir", str(tmp_path / "work")]
    argv += ["--out", str(out), "--points", "50:0.0,3:0.9", "--chunk-rows", "700"]
    argv += ["--gt-chunk-rows", "900", "--n-postings", "400", *extra]
    assert bench_build_scale.main(argv) == 0
    return json.loads(out.read_text())


def test_vm_status_is_this_process_alone() -> None:
    assert 0 < vm_status_mb("VmRSS") <= vm_status_mb("VmHWM")


def test_generated_corpus_ours_end_to_end(
    tmp_path: Path, tiny_vectors: Path, capfd: pytest.CaptureFixture
) -> None:
    argv = ["--corpus", "generated", "--n-docs", "2000", "--mean-nnz", "25"]
    argv += ["--prefixes", "a,b", "--queries", "30", "--systems", "ours"]
    report = run(tmp_path, tiny_vectors, *argv)
    corpus = report["corpus"]
    assert corpus["n_docs"] == 2000 and abs(corpus["nnz_per_doc"] - 25) < 1.5
    assert corpus["shards"] == [
        "shard-000000.parquet",
        "shard-000001.parquet",
        "shard-000002.parquet",
    ]
    assert corpus["fit"]["df_correlation"] > 0.9
    ours = report["systems"]["ours"]
    expected = "in-memory CSR"
    if hasattr(SeismicIndex, "build_from_shards"):
        expected = "Parquet shards (SeismicIndex.build_from_shards, written as built)"
    assert ours["input"] == expected
    assert ours["build_seconds"] > 0 and ours["index_bytes"] > 0
    assert 0 < ours["peak_rss_mb"] <= ours["ru_maxrss_mb"] + 1
    exhaustive, cut = ours["query"]["points"]
    assert exhaustive["recall@10"] == 1.0 and exhaustive["recall@10_batch"] == 1.0
    assert 0 < cut["recall@10"] <= 1.0 and cut["qps_allthreads"] > 0
    assert report["machine"]["versions"]["numba"] and report["queries"]["n_queries"] == 30
    work = tmp_path / "work"
    assert not (work / "index_ours").exists()  # removed unless --keep-indexes
    ids, _ = read_gt(work / "gt.bin")
    assert ids.shape == (30, 10) and read_csr(work / "queries.csr").n_rows == 30
    capfd.readouterr()
    again = run(tmp_path, tiny_vectors, *argv)
    assert "reusing the corpus" in capfd.readouterr().out
    assert again["corpus"] == corpus


def test_tiled_corpus_both_systems(tmp_path: Path, tiny_vectors: Path) -> None:
    pytest.importorskip("seismic")
    argv = ["--corpus", "tiled", "--copies", "2", "--prefixes", "a,b", "--top-columns", "500"]
    report = run(tmp_path, tiny_vectors, *argv, "--queries", "25", "--in-memory")
    assert report["name"] == "tiled_x2"
    assert report["systems"]["ours"]["input"] == "in-memory CSR"
    assert report["corpus"]["n_docs"] == 4400
    systems = report["systems"]
    assert set(systems) == {"ours", "pyseismic"}
    for s in systems.values():
        assert s["query"]["points"][0]["recall@10"] == 1.0
        assert s["peak_rss_mb"] > 0 and s["index_bytes"] > 0
    assert np.isfinite(systems["pyseismic"]["load_seconds"])


def test_pyseismic_is_skipped_when_it_would_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scale_processes, "memory_available", lambda: 24 * 2**30)
    reason = scale_processes.pyseismic_would_not_fit(1_061_018_760)
    assert reason is not None and "GiB available" in reason
    assert scale_processes.pyseismic_would_not_fit(112_000_000) is None
    monkeypatch.setattr(scale_processes, "memory_available", lambda: None)
    assert scale_processes.pyseismic_would_not_fit(10**12) is None


def test_a_child_past_the_memory_limit_is_killed(tmp_path: Path) -> None:
    grow = (
        "import time; a = bytearray(300 * 2**20); a[::4096] = b'x' * len(a[::4096]); time.sleep(30)"
    )
    start = time.perf_counter()
    code, _, killed = scale_processes.watch(
        [sys.executable, "-c", grow], dict(os.environ), tmp_path / "log", max_rss_mb=100
    )
    assert killed is not None and "limit 0.1 GiB" in killed and code != 0
    assert time.perf_counter() - start < 20
    code, usage, killed = scale_processes.watch(
        [sys.executable, "-c", "pass"], dict(os.environ), tmp_path / "log", max_rss_mb=None
    )
    assert code == 0 and killed is None and usage.ru_maxrss > 0
