"""The compute a process was given: CPUs it may use (affinity, cgroup quota, OMP_NUM_THREADS)
and the CUDA devices a job can put one encoding worker on each.

``os.cpu_count()`` is the machine's count, not the process's: a Ray actor with ``num_cpus=1``
(Ray sets ``OMP_NUM_THREADS=1`` for it), a process under ``taskset`` or a container with a CPU
quota may use fewer, and torch threads beyond that only oversubscribe the cores.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
# Half the cores, at most this many, when nothing limits the process (a shared server box).
SERVER_THREADS_CAP = 8


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (``os.cpu_count()`` where there is no mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``quota / period``), None when unlimited.

    Reads cgroup v2 ``cpu.max`` ("max 100000" or "200000 100000") or v1
    ``cpu/cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (-1 = unlimited) under ``root``.
    """
    candidates = [
        (root / "cpu.max", None),
        (root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"),
        (root / "cpu,cpuacct" / "cpu.cfs_quota_us", root / "cpu,cpuacct" / "cpu.cfs_period_us"),
    ]
    for quota_file, period_file in candidates:
        try:
            if period_file is None:
                quota, _, period = quota_file.read_text().strip().partition(" ")
            else:
                quota, period = quota_file.read_text().strip(), period_file.read_text().strip()
        except OSError:
            continue
        if quota in ("max", "-1", ""):
            return None
        try:
            cpus = float(quota) / float(period or 100000)
        except ValueError:
            logger.warning("unreadable CPU quota in %s: %r", quota_file, quota)
            return None
        return cpus if cpus > 0 else None
    return None


def _omp_threads() -> int | None:
    """``OMP_NUM_THREADS`` when it is a positive integer (Ray sets it to an actor's CPUs)."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def hardware_cpus(root: Path = CGROUP_ROOT) -> int:
    """CPUs the process can run on at once: its affinity mask, capped by its cgroup quota."""
    cpus = affinity_cpus()
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def allotted_cpus(root: Path = CGROUP_ROOT) -> int:
    """CPUs this process was given: :func:`hardware_cpus`, capped by ``OMP_NUM_THREADS``."""
    cpus = hardware_cpus(root)
    omp = _omp_threads()
    return max(1, min(cpus, omp) if omp else cpus)


def torch_threads(num_threads: int | None = None, root: Path = CGROUP_ROOT) -> int:
    """The torch intra-op thread count an encoder on the CPU should use.

    ``num_threads`` given: that, but never more than the CPUs the process can run on
    (affinity, quota). Otherwise, when the process was allotted fewer CPUs than the machine
    has (a Ray actor, ``taskset``, a CPU quota, ``OMP_NUM_THREADS``): all of them, it is a
    worker's share. Otherwise half the cores, at most :data:`SERVER_THREADS_CAP`: a query is a
    few small ops, and OpenMP barriers across every core of a busy server cost more than the
    arithmetic (180 ms vs 6 ms for one query on a loaded 2-core box).
    """
    if num_threads is not None:
        if int(num_threads) < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        return min(int(num_threads), hardware_cpus(root))
    allotted = allotted_cpus(root)
    if allotted < (os.cpu_count() or allotted):
        return allotted
    return max(1, min(SERVER_THREADS_CAP, allotted // 2))


def cpu_lanes(num_threads: int | None = None) -> int:
    """Set up CPU encoding: every torch op on one thread, :func:`torch_threads` batches side
    by side (lanes); returns the number of lanes.

    Why not one batch over many threads: the sums inside a multi-threaded GEMM depend on the
    thread count (MKL's sgemm with 1 vs 2 threads differs by up to 1.5e-5 for some shapes),
    so a Ray actor given 1 CPU and a job given 16 would write different bytes; with one
    thread per op, each batch's arithmetic is the same whatever the lanes. And no OpenMP
    barrier spans the cores of a busy machine (one query took 216 ms with 2 threads vs
    3.5 ms with 1 on the loaded 2-core box). Sets torch's intra-op threads process-wide.
    """
    lanes = torch_threads(num_threads)
    if torch.get_num_threads() != 1:
        logger.info(
            "torch intra-op threads: %d -> 1 (%d CPU lanes)", torch.get_num_threads(), lanes
        )
        torch.set_num_threads(1)
    return lanes


@contextmanager
def training_threads(device: torch.device) -> Iterator[int]:
    """Torch intra-op threads for training on ``device``: every CPU the process was given
    (:func:`allotted_cpus`) while the block runs, the previous count after; yields it (1 on
    a GPU, where nothing changes).

    Loading an encoder on the CPU sets one thread per op process-wide (:func:`cpu_lanes`:
    right for many small encoding batches side by side), which left a CPU adaptation's large
    matrix products on one core of however many the machine has. Training is one stream of
    large products, so all the allotted cores work on each; its sums then depend on the
    thread count, as a GPU training's do on the card.
    """
    if device.type != "cpu":
        yield 1
        return
    before = torch.get_num_threads()
    threads = allotted_cpus()
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


def cuda_devices() -> list[str]:
    """``["cuda:0", "cuda:1", ...]``: the visible GPUs (``CUDA_VISIBLE_DEVICES`` applies)."""
    if not torch.cuda.is_available():
        return []
    return [f"cuda:{i}" for i in range(torch.cuda.device_count())]


def worker_devices(max_workers: int | None = None) -> list[str]:
    """One device per encoding worker of a job: every visible GPU, else ``["cpu"]``.

    A job runs one process per entry, each with ``load_encoder(name, device=entry)`` and
    whole shards through ``encode_documents``; GPUs of one type give bit-identical shards.
    """
    devices = cuda_devices() or ["cpu"]
    return devices[:max_workers] if max_workers else devices
