"""The machine record stored in every index benchmark's JSON.

Search speed depends on the CPU (SIMD width, cache sizes), the kernel's huge-page policy
and the compiler stack, so a number without them cannot be compared with another.
``machine_info()`` reads them from Linux's ``/proc`` and ``/sys`` (``lscpu`` as a fallback
for the caches) and never fails: what it cannot read is ``None``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

# CPU flags that decide which code paths NumPy, LLVM (Numba) and the Rust build can use, and
# (VNNI, BF16, AMX) whether the CPU encoders screen the SPLADE head in int8 / bf16.
FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512bw", "avx512fp16",
         "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")  # fmt: skip
PACKAGES = ("numba", "llvmlite", "numpy", "scipy", "pyarrow", "pyseismic-lsr")
# What the encoder and evaluation benchmarks also depend on.
MODEL_PACKAGES = (*PACKAGES, "torch", "transformers", "sentence-transformers", "bm25s")
CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")
THP_DIR = Path("/sys/kernel/mm/transparent_hugepage")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpuinfo(text: str | None = None) -> dict[str, str]:
    """The first processor's ``key: value`` lines of ``/proc/cpuinfo`` (empty if unreadable)."""
    text = _read(Path("/proc/cpuinfo")) if text is None else text
    fields: dict[str, str] = {}
    for line in (text or "").splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def parse_size(text: str) -> int | None:
    """Bytes of a cache size as sysfs or lscpu write it (``"48K"``, ``"2 MiB"``, ``"1048576"``)."""
    text = text.strip().split(" (")[0].replace(" ", "")
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    for suffix in ("iB", "B"):
        text = text.removesuffix(suffix)
    try:
        if text and text[-1].upper() in units:
            return int(float(text[:-1]) * units[text[-1].upper()])
        return int(text)
    except ValueError:
        return None


def cache_sizes(cache_dir: Path = CACHE_DIR) -> dict[str, int | None]:
    """L1d, L2 and L3 sizes in bytes as cpu0 sees them (sysfs, else ``lscpu``)."""
    sizes: dict[str, int | None] = {"L1d": None, "L2": None, "L3": None}
    for entry in sorted(cache_dir.glob("index*")):
        level, kind, size = (_read(entry / n) for n in ("level", "type", "size"))
        if level is None or size is None or kind == "Instruction":
            continue
        name = "L1d" if level == "1" else f"L{level}"
        if name in sizes:
            sizes[name] = parse_size(size)
    if all(v is None for v in sizes.values()):
        sizes.update(_lscpu_caches())
    return sizes


def _lscpu_caches() -> dict[str, int | None]:
    try:
        out = subprocess.run(["lscpu", "-J"], capture_output=True, text=True, timeout=10).stdout
        rows = json.loads(out)["lscpu"]
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return {}
    names = {"L1d cache:": "L1d", "L2 cache:": "L2", "L3 cache:": "L3"}
    return {names[r["field"]]: parse_size(r["data"]) for r in rows if r.get("field") in names}


def _selected(path: Path) -> str | None:
    """The bracketed choice of a sysfs setting (``always [madvise] never`` -> ``madvise``)."""
    text = _read(path)
    if text and "[" in text:
        return text.split("[", 1)[1].split("]", 1)[0]
    return text


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages whose code is timed (``None`` when absent)."""
    found: dict[str, str | None] = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def llvm_cpu_name() -> str | None:
    """The CPU name Numba's LLVM compiles for (``skylake-avx512``, ``znver3``, ...)."""
    try:
        import llvmlite.binding as llvm

        return str(llvm.get_host_cpu_name())
    except Exception:  # a record, never a failure
        return None


def machine_info(packages: tuple[str, ...] = PACKAGES) -> dict:
    """CPU model and vendor, relevant flags, cores, caches, THP, kernel and the versions of
    ``packages``."""
    info = cpuinfo()
    flags = set(info.get("flags", "").split())
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    mem = None
    if hasattr(os, "sysconf"):
        try:
            mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            mem = None
    return {
        "cpu_model": info.get("model name") or platform.processor() or None,
        "cpu_vendor": info.get("vendor_id"),
        "cpu_family_model_stepping": [info.get(k) for k in ("cpu family", "model", "stepping")],
        "cpu_flags": {f: f in flags for f in FLAGS} if flags else None,
        "llvm_cpu_name": llvm_cpu_name(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "cache_bytes": cache_sizes(),
        "memory_bytes": mem,
        "thp_enabled": _selected(THP_DIR / "enabled"),
        "thp_defrag": _selected(THP_DIR / "defrag"),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions(packages),
        "env": {k: os.environ[k] for k in sorted(os.environ) if k.startswith("NUMBA_")},
    }


def describe(machine: dict) -> str:
    """One line for a benchmark's printed header."""
    caches = machine.get("cache_bytes") or {}
    l3 = caches.get("L3")
    flags = machine.get("cpu_flags") or {}
    simd = "avx512f" if flags.get("avx512f") else "avx2" if flags.get("avx2") else "no avx2"
    return (
        f"{machine.get('cpu_model')} ({machine.get('usable_cpus')} cpus, {simd}, "
        f"L3 {l3 / 2**20:.0f} MiB)"
        if l3
        else f"{machine.get('cpu_model')} ({machine.get('usable_cpus')} cpus, {simd})"
    )


if __name__ == "__main__":
    print(json.dumps(machine_info(), indent=1))


def write_report(path: Path, script: str, argv: list[str], fields: dict) -> None:
    """Write a benchmark's JSON: the command that produced it, ``fields``, the Python
    version and the machine record (with the model packages' versions)."""
    report = {
        "command": " ".join([f"python benchmarks/{script}", *argv]),
        **fields,
        "python": platform.python_version(),
        "machine": machine_info(MODEL_PACKAGES),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
