"""CPUs a process was given (affinity, cgroup quota, OMP_NUM_THREADS) and the devices a job
runs workers on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from encoders.resources import (
    SERVER_THREADS_CAP,
    allotted_cpus,
    cgroup_cpu_quota,
    cuda_devices,
    hardware_cpus,
    torch_threads,
    training_threads,
    worker_devices,
)

REPO = Path(__file__).resolve().parents[2]


def test_cgroup_quota_v2_and_v1(tmp_path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == pytest.approx(1.5)
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(v1) == pytest.approx(2.0)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(v1) is None
    assert cgroup_cpu_quota(tmp_path / "absent") is None


def test_quota_caps_the_cpus(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU: still one thread
    assert hardware_cpus(tmp_path) == 1
    assert torch_threads(None, tmp_path) == 1
    assert torch_threads(64, tmp_path) == 1  # never more threads than CPUs to run them


def test_omp_num_threads_is_an_allotment(monkeypatch, tmp_path) -> None:
    """Ray sets OMP_NUM_THREADS to an actor's CPUs: that is the worker's share, all used."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert allotted_cpus(tmp_path) == 1
    assert torch_threads(None, tmp_path) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert allotted_cpus(tmp_path) == hardware_cpus(tmp_path)


def test_unlimited_process_gets_the_server_default(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cpus = hardware_cpus(tmp_path)
    if cpus < (os.cpu_count() or cpus):
        pytest.skip("this process is already limited by its affinity mask")
    assert torch_threads(None, tmp_path) == max(1, min(SERVER_THREADS_CAP, cpus // 2))
    with pytest.raises(ValueError, match="num_threads"):
        torch_threads(0, tmp_path)


AFFINITY_SCRIPT = """
import os, sys, torch
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
from encoders import load_encoder
enc = load_encoder(sys.argv[1], device="cpu")
print(enc.cpu_lanes, torch.get_num_threads())
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity masks here")
def test_encoder_respects_the_affinity_mask(splade_tiny_dir) -> None:
    """A process pinned to one CPU encodes on one lane of one torch thread, whatever
    ``os.cpu_count()`` says."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", AFFINITY_SCRIPT, str(splade_tiny_dir)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env=env,
    )
    assert out.stdout.split()[-2:] == ["1", "1"]


def test_explicit_num_threads_sets_the_lanes(splade_tiny_dir) -> None:
    from encoders import load_encoder

    enc = load_encoder(str(splade_tiny_dir), device="cpu", num_threads=2)
    assert enc.cpu_lanes == min(2, hardware_cpus())
    assert torch.get_num_threads() == 1


def test_worker_devices_without_a_gpu() -> None:
    if torch.cuda.is_available():
        assert worker_devices() == cuda_devices() != []
        assert worker_devices(1) == ["cuda:0"]
    else:
        assert cuda_devices() == [] and worker_devices() == ["cpu"]


def test_training_threads_use_every_allotted_cpu_and_restore(monkeypatch) -> None:
    """Encoding sets one thread per op process-wide; a CPU training in the same process must
    still get every CPU it was given, and leave the encoders' setting as it found it."""
    import encoders.resources as resources

    monkeypatch.setattr(resources, "allotted_cpus", lambda root=None: 3)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with training_threads(torch.device("cpu")) as threads:
            assert threads == 3 and torch.get_num_threads() == 3
        assert torch.get_num_threads() == 1
        with training_threads(torch.device("cuda")) as threads:  # a GPU: nothing changes
            assert threads == 1 and torch.get_num_threads() == 1
        with pytest.raises(RuntimeError):  # restored on errors too
            with training_threads(torch.device("cpu")):
                raise RuntimeError("boom")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
