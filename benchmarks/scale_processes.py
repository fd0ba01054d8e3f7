"""bench_build_scale's child processes: start one, watch its memory, collect its result.

A build that outgrows the machine must not take a shared box down with it: the parent
samples the child's resident set and kills it past ``max_rss_mb`` (by default 90% of the
memory available when the benchmark started), and pyseismic, whose whole index lives in
memory, is not even started where its known appetite would not fit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

RUNNER = Path(__file__).resolve().parent / "build_runner.py"
# pyseismic's peak memory per non-zero (issue 10: 5.0 GB for 88.3M non-zeros).
PYSEISMIC_BYTES_PER_NNZ = 57
POLL_SECONDS = 0.2


class ChildFailed(RuntimeError):
    """A build or query process failed, or was killed for its memory."""


def memory_available() -> int | None:
    """``MemAvailable`` of /proc/meminfo in bytes (None where it cannot be read)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def default_max_rss_mb() -> float | None:
    free = memory_available()
    return None if free is None else 0.9 * free / 2**20


def pyseismic_would_not_fit(nnz: int) -> str | None:
    """Why pyseismic's build is skipped at this size, or None when it should fit."""
    need, free = PYSEISMIC_BYTES_PER_NNZ * nnz, memory_available()
    if free is not None and need > 0.9 * free:
        return (
            f"needs about {need / 2**30:.1f} GiB ({PYSEISMIC_BYTES_PER_NNZ} bytes a non-zero), "
            f"{free / 2**30:.1f} GiB available; --force runs it anyway"
        )
    return None


def rss_mb(pid: int) -> float | None:
    """Current resident set of process ``pid`` in MiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def watch(
    cmd: list[str], env: dict, log_path: Path, max_rss_mb: float | None
) -> tuple[int, os.struct_rusage, str | None]:
    """Run ``cmd``; kill it when its RSS passes ``max_rss_mb``.

    Returns (exit code, rusage, why it was killed or None).
    """
    killed = None
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss = rss_mb(proc.pid) if max_rss_mb is not None and killed is None else None
            if rss is not None and rss > max_rss_mb:
                killed = f"killed at {rss / 1024:.1f} GiB RSS (limit {max_rss_mb / 1024:.1f} GiB)"
                proc.kill()
            time.sleep(POLL_SECONDS)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage, killed


def run_child(task: str, system: str, work: Path, args: argparse.Namespace, params: dict) -> dict:
    """Run ``build_runner.py`` in a fresh process; its result, with wall time and rusage.

    Raises :class:`ChildFailed` with the log's tail when it fails or is killed.
    """
    index_dir = work / f"index_{system}"
    if task == "build":
        shutil.rmtree(index_dir, ignore_errors=True)
    result_path = work / f"{task}_{system}.json"
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, str(RUNNER), task, "--system", system, "--corpus", str(work)]
    cmd += ["--index", str(index_dir), "--threads", str(args.threads), "--result", str(result_path)]
    cmd += ["--params", json.dumps(params), "--points", args.points]
    cmd += ["--in-memory"] if args.in_memory else []
    threads = str(args.threads)
    env = {
        **os.environ,
        "NUMBA_NUM_THREADS": threads,
        "RAYON_NUM_THREADS": threads,
        "OMP_NUM_THREADS": threads,
    }
    log_path = work / f"{task}_{system}.log"
    start = time.perf_counter()
    code, usage, killed = watch(cmd, env, log_path, args.max_rss_mb)
    wall = time.perf_counter() - start
    if killed or code != 0 or not result_path.is_file():
        tail = log_path.read_text()[-2000:]
        raise ChildFailed(f"{task} {system}: {killed or f'exit {code}'}\n{tail}")
    result = json.loads(result_path.read_text())
    # ru_maxrss is never below this parent's RSS at fork time (Linux keeps it across exec);
    # peak_rss_mb is the child's own VmHWM. Both are kept.
    result["ru_maxrss_mb"] = usage.ru_maxrss / 1024.0
    result["process_wall_seconds"] = wall
    return result
