"""Round 6's selection rule (benchmarks/device/adapt_sweep.py), fixed before its GPU run: a
variant replaces the default only on a mean gain of at least 0.003 that is also more than
twice the standard error of its per-seed paired differences."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.device.adapt_sweep import ROUND6, ROUND6_SEED0, Sweep, round6_rule  # noqa: E402


def test_round6_rule_needs_a_gain_that_seeds_agree_on() -> None:
    train = {
        "documents": [0.610, 0.600, 0.605],
        "steady": [0.615, 0.605, 0.610],  # +0.005 on every seed
        "noisy": [0.630, 0.590, 0.615],  # +0.0067 on average, -0.010 on one seed
        "small": [0.612, 0.602, 0.607],  # +0.002 on every seed: below the margin
    }
    rule = round6_rule(train)
    assert rule["gain"]["steady"] == pytest.approx(0.005, abs=1e-9)
    assert rule["stderr"]["steady"] == pytest.approx(0.0, abs=1e-6)
    assert rule["passed"] == ["steady"] and rule["selected"] == "steady"
    assert rule["mean"]["documents"] == pytest.approx(0.605)
    assert round6_rule({"documents": [0.61], "wide": [0.62]})["selected"] is None  # one seed


def test_round6_seed0_covers_every_variant() -> None:
    assert set(ROUND6_SEED0) == set(ROUND6)


def test_round6_on_the_recorded_runs_selects_nothing() -> None:
    """The rule on round 6's recorded scores (seeds 0-2) gives what the results file says."""
    path = Path(__file__).resolve().parents[2] / "benchmarks/results/csr_adapt_sweep6_h200.json"
    report = json.loads(path.read_text())
    by_seed = {k: v for k, v in report["train_served_by_seed"].items() if k != "seeds"}
    rule = round6_rule(by_seed)
    assert rule["selected"] is None and rule["passed"] == []
    assert rule["gain"]["wide"] == pytest.approx(report["rule"]["gain"]["wide"])


def test_sweep_reports_record_the_machine() -> None:
    sweep = Sweep.__new__(Sweep)  # the machine record needs no carried data
    sweep.dev = torch.device("cpu")
    machine = sweep.machine()
    assert machine["gpu"] is None and machine["cpu_model"]
    assert machine["versions"]["torch"] == torch.__version__
