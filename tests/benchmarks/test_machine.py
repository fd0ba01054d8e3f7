"""The machine record: every field present, parsers right on the formats Linux writes."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.machine import FLAGS, cache_sizes, cpuinfo, describe, machine_info, parse_size

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse4_2 avx avx2 fma f16c bmi2 avx512f avx512bw

processor\t: 1
vendor_id\t: ShouldNotBeRead
"""


def test_cpuinfo_reads_the_first_processor_only() -> None:
    info = cpuinfo(CPUINFO)
    assert info["vendor_id"] == "GenuineIntel"
    assert info["model name"].startswith("Intel(R) Xeon(R)")
    assert "avx512f" in info["flags"].split()


def test_parse_size() -> None:
    assert parse_size("48K") == 48 * 1024
    assert parse_size("2 MiB") == 2 * 2**20
    assert parse_size("300 MiB (2 instances)") == 300 * 2**20
    assert parse_size("1048576") == 1048576
    assert parse_size("n/a") is None


def test_cache_sizes_from_sysfs_layout(tmp_path: Path) -> None:
    for n, (level, kind, size) in enumerate(
        [("1", "Data", "48K"), ("1", "Instruction", "32K"), ("2", "Unified", "2048K"),
         ("3", "Unified", "107520K")]
    ):  # fmt: skip
        d = tmp_path / f"index{n}"
        d.mkdir()
        (d / "level").write_text(level + "\n")
        (d / "type").write_text(kind + "\n")
        (d / "size").write_text(size + "\n")
    assert cache_sizes(tmp_path) == {"L1d": 48 * 1024, "L2": 2 * 2**20, "L3": 105 * 2**20}


def test_machine_info_has_every_field_and_is_json() -> None:
    info = machine_info()
    for key in (
        "cpu_model",
        "cpu_vendor",
        "cpu_flags",
        "logical_cpus",
        "usable_cpus",
        "cache_bytes",
        "thp_enabled",
        "kernel",
        "versions",
    ):
        assert key in info
    assert set(info["versions"]) >= {"numba", "llvmlite", "numpy", "scipy", "pyarrow"}
    assert info["versions"]["numpy"] is not None
    if info["cpu_flags"] is not None:
        assert set(info["cpu_flags"]) == set(FLAGS)
    assert set(info["cache_bytes"]) == {"L1d", "L2", "L3"}
    json.dumps(info)
    assert isinstance(describe(info), str)
