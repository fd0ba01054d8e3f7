"""``lsr bench``: a benchmark script runs with every argument as given and its exit status."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.cli import main as lsr
from app.commands.bench import BENCHMARKS


def test_help_goes_to_the_script(capfd: pytest.CaptureFixture) -> None:
    assert lsr(["bench", "index", "--help"]) == 0
    assert "usage: bench_index.py" in capfd.readouterr().out


def test_the_scripts_exit_status_and_errors_come_through(capfd: pytest.CaptureFixture) -> None:
    argv = ["--docs", "/no/such/docs.npz", "--queries", "/no/such/q.npz", "--no-pyseismic"]
    direct = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench_index.py"), *argv], capture_output=True, text=True
    )
    assert direct.returncode != 0
    capfd.readouterr()
    assert lsr(["bench", "index", *argv]) == direct.returncode
    assert direct.stderr.strip().splitlines()[-1] in capfd.readouterr().err
    assert lsr(["bench", "index", "--dataset", "nonsense"]) == 2
    assert "invalid choice: 'nonsense'" in capfd.readouterr().err


def test_unknown_benchmark_lists_the_available_ones(capfd: pytest.CaptureFixture) -> None:
    assert lsr(["bench", "nosuch"]) == 2
    err = capfd.readouterr().err
    assert "no benchmark 'nosuch'" in err and "index" in err
