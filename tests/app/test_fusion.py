"""Fusion arithmetic, checked against values worked out by hand."""

from __future__ import annotations

import pytest

from app.services.fusion import (
    FusionSpec,
    fuse,
    linear_fusion,
    min_max,
    reciprocal_rank_fusion,
)

SPLADE = (["a", "b", "c"], [9.0, 5.0, 1.0])
BM25 = (["b", "d"], [20.0, 10.0])


def as_dict(fused):
    return dict(fused)


def test_rrf_hand_computed():
    fused = reciprocal_rank_fusion([SPLADE, BM25])
    # b: 1/62 + 1/61; a: 1/61; d: 1/62; c: 1/63
    assert [d for d, _ in fused] == ["b", "a", "d", "c"]
    got = as_dict(fused)
    assert got["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert got["a"] == pytest.approx(1 / 61)
    assert got["d"] == pytest.approx(1 / 62)
    assert got["c"] == pytest.approx(1 / 63)


def test_rrf_weights_and_k():
    fused = as_dict(reciprocal_rank_fusion([SPLADE, BM25], weights=[2.0, 0.5], k=1))
    assert fused["a"] == pytest.approx(2 / 2)
    assert fused["b"] == pytest.approx(2 / 3 + 0.5 / 2)
    assert fused["d"] == pytest.approx(0.5 / 3)
    assert fused["c"] == pytest.approx(2 / 4)


def test_rrf_uses_order_not_scores():
    scaled = (SPLADE[0], [s * 1000 for s in SPLADE[1]])
    assert reciprocal_rank_fusion([SPLADE, BM25]) == reciprocal_rank_fusion([scaled, BM25])


def test_rrf_zero_weight_run_adds_nothing_but_keeps_docs():
    fused = as_dict(reciprocal_rank_fusion([SPLADE, BM25], weights=[1.0, 0.0]))
    assert fused["d"] == 0.0
    assert fused["b"] == pytest.approx(1 / 62)


def test_min_max():
    assert min_max([9.0, 5.0, 1.0]) == [1.0, 0.5, 0.0]
    assert min_max([3.0, 3.0]) == [1.0, 1.0]
    assert min_max([7.0]) == [1.0]
    assert min_max([]) == []


def test_linear_hand_computed():
    fused = linear_fusion([SPLADE, BM25], weights=[0.3, 0.7])
    got = as_dict(fused)
    # SPLADE normalised: a 1, b 0.5, c 0; BM25: b 1, d 0.
    assert got["a"] == pytest.approx(0.3)
    assert got["b"] == pytest.approx(0.3 * 0.5 + 0.7 * 1.0)
    assert got["c"] == pytest.approx(0.0)
    assert got["d"] == pytest.approx(0.0)
    # c and d tie at 0: doc id breaks the tie.
    assert [d for d, _ in fused] == ["b", "a", "c", "d"]


def test_linear_equal_weights_default():
    got = as_dict(linear_fusion([SPLADE, BM25]))
    assert got["b"] == pytest.approx(1.5)
    assert got["a"] == pytest.approx(1.0)


def test_ties_broken_by_doc_id():
    one = (["z", "y"], [1.0, 0.5])
    two = (["y", "z"], [1.0, 0.5])
    assert [d for d, _ in reciprocal_rank_fusion([one, two])] == ["y", "z"]
    assert [d for d, _ in linear_fusion([one, two])] == ["y", "z"]


def test_missing_doc_in_one_run_gets_only_the_other():
    fused = as_dict(reciprocal_rank_fusion([(["x"], [1.0]), (["y"], [1.0])]))
    assert fused == {"x": pytest.approx(1 / 61), "y": pytest.approx(1 / 61)}


def test_empty_runs():
    assert reciprocal_rank_fusion([]) == []
    assert linear_fusion([]) == []
    assert reciprocal_rank_fusion([([], []), ([], [])]) == []
    got = linear_fusion([([], []), (["a"], [2.0])])
    assert got == [("a", 1.0)]


def test_depth_cuts_after_sorting():
    assert [d for d, _ in reciprocal_rank_fusion([SPLADE, BM25], depth=2)] == ["b", "a"]
    assert linear_fusion([SPLADE, BM25], depth=0) == []


def test_fuse_dispatches():
    assert fuse([SPLADE, BM25], FusionSpec("rrf")) == reciprocal_rank_fusion([SPLADE, BM25])
    spec = FusionSpec("linear", (0.3, 0.7))
    assert fuse([SPLADE, BM25], spec) == linear_fusion([SPLADE, BM25], [0.3, 0.7])
    assert spec.describe() == "linear(0.3,0.7)"


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [0.0, 0.0], [float("nan"), 1.0]])
def test_bad_weights(weights):
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([SPLADE, BM25], weights=weights)


def test_bad_runs_and_specs():
    with pytest.raises(ValueError, match="twice"):
        linear_fusion([(["a", "a"], [1.0, 0.5])])
    with pytest.raises(ValueError, match="scores"):
        reciprocal_rank_fusion([(["a"], [1.0, 0.5])])
    with pytest.raises(ValueError, match="method"):
        FusionSpec("max")
    with pytest.raises(ValueError):
        FusionSpec("rrf", (0.0,))
