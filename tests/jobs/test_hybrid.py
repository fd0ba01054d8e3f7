"""Hybrid ``lsr eval``: the fusion grid, selection on other queries, and a small real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main as lsr
from app.jobs.evaluation.hybrid import (
    RERANK_GRID,
    HybridConfig,
    HybridEvaluation,
    default_fusion,
    default_rerank_weight,
    fuse_runs,
    fusion_grid,
    rerank_run,
    select_fusion,
    select_rerank_weight,
)
from app.services.fusion import FusionSpec, reciprocal_rank_fusion
from tests.conftest import needs_minilm


def test_grid_covers_both_methods_on_the_simplex() -> None:
    grid = fusion_grid(2)
    assert len(grid) == 2 * 11
    assert {spec.method for spec in grid} == {"rrf", "linear"}
    assert all(sum(spec.weights) == pytest.approx(1.0) for spec in grid)
    assert len(fusion_grid(3)) == 2 * 15  # compositions of 4 into 3 parts


def test_fuse_runs_is_fusion_per_query() -> None:
    a = {"q1": {"d1": 3.0, "d2": 2.0}, "q2": {"d3": 1.0}}
    b = {"q1": {"d2": 9.0}, "q2": {}}
    fused, seconds = fuse_runs([a, b], FusionSpec("rrf"), depth=10)
    assert len(seconds) == 2
    assert fused["q1"] == dict(
        reciprocal_rank_fusion([(["d1", "d2"], [3.0, 2.0]), (["d2"], [9.0])])
    )
    assert fused["q2"] == {"d3": pytest.approx(1 / 61)}


def test_selection_follows_the_judged_queries() -> None:
    # Field 0 ranks each query's relevant doc first, field 1 ranks it last: selection must
    # put all the weight on field 0.
    qrels = {f"q{i}": {f"rel{i}": 1} for i in range(5)}
    good = {q: {f"rel{i}": 10.0, **{f"n{i}{j}": 5.0 - j for j in range(5)}}
            for i, q in enumerate(qrels)}  # fmt: skip
    bad = {q: {**{f"n{i}{j}": 10.0 - j for j in range(20)}, f"rel{i}": 0.5}
           for i, q in enumerate(qrels)}  # fmt: skip
    spec, table = select_fusion([good, bad], qrels)
    assert spec.weights[0] > spec.weights[1]
    assert len(table) == len(fusion_grid(2))
    assert max(row["nDCG@10"] for row in table) == pytest.approx(1.0)


def test_default_fusion_is_the_shipped_selection_for_its_pair() -> None:
    # The pair selected on SciFact train keeps its weights with its fields, in either order.
    assert default_fusion(("splade-tiny", "bm25")) == FusionSpec("linear", (0.3, 0.7))
    assert default_fusion(("bm25", "splade-tiny")) == FusionSpec("linear", (0.7, 0.3))
    assert default_fusion(("csr-minilm", "bm25")) == FusionSpec("linear", (0.4, 0.6))
    # Fields nobody selected a fusion for: RRF, equal weights (no score scale to trust).
    assert default_fusion(("csr-minilm-indomain", "bm25")) == FusionSpec("rrf")
    assert default_fusion(("splade-tiny", "bm25", "csr-minilm")) == FusionSpec("rrf")
    config = HybridConfig(dataset="x", encoders=("bm25", "splade-tiny"))
    evaluation = HybridEvaluation(config)
    assert evaluation.select() == FusionSpec("linear", (0.7, 0.3))
    assert evaluation.meta["fusion_default"] == "selected on SciFact train"


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="two"):
        HybridConfig(dataset="x", encoders=("bm25",))
    with pytest.raises(ValueError, match="weights"):
        HybridConfig(dataset="x", encoders=("a", "b"), fusion=FusionSpec("rrf", (1.0,)))
    with pytest.raises(ValueError, match="either"):
        HybridConfig(dataset="x", encoders=("a", "b"), fusion=FusionSpec(), select_on=("x", "t"))
    with pytest.raises(ValueError, match="rerank"):
        HybridConfig(dataset="x", encoders=("a", "b"), rerank="cross")
    for weight in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="rerank weight"):
            HybridConfig(dataset="x", encoders=("a", "b"), rerank="dense", rerank_weight=weight)


def test_rerank_mixes_min_max_scaled_fused_scores_and_cosines() -> None:
    """(1 - w) minmax(fused) + w minmax(cosine) over each query's candidates: w = 0 keeps
    the fused order, w = 1 is the cosine's order, in between the arithmetic is exact."""
    candidates = {"q": (["a", "b", "c"], [3.0, 2.0, 1.0], [0.1, 0.5, 0.3])}
    assert rerank_run(candidates, 0.0)["q"] == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert rerank_run(candidates, 1.0)["q"] == pytest.approx({"a": 0.0, "b": 1.0, "c": 0.5})
    mixed = rerank_run(candidates, 0.25)["q"]
    assert mixed == pytest.approx({"a": 0.75, "b": 0.625, "c": 0.125})
    assert rerank_run({"q": ([], [], [])}, 0.5) == {"q": {}}


def test_rerank_weight_selection_follows_the_judged_queries() -> None:
    """Where the cosine puts each query's relevant document first and the fused order puts
    it last, the selection gives the cosine the smallest share that ranks it first; the
    other way round, none."""
    qrels = {f"q{i}": {f"rel{i}": 1} for i in range(4)}
    ids = {q: [f"n{i}{j}" for j in range(9)] + [f"rel{i}"] for i, q in enumerate(qrels)}
    fused = [10.0 - j for j in range(10)]  # the relevant document last
    cosine = [0.1] * 9 + [0.9]  # ... and first by the cosine
    dense_right = {q: (ids[q], fused, cosine) for q in qrels}
    weight, table = select_rerank_weight(dense_right, qrels)
    assert [row["dense_weight"] for row in table] == list(RERANK_GRID)
    scores = {row["dense_weight"]: row["nDCG@10"] for row in table}
    assert scores[0.0] < 1.0 and scores[1.0] == pytest.approx(1.0)
    assert weight == min(w for w, v in scores.items() if v == max(scores.values())) >= 0.5
    sparse_right = {q: (ids[q][::-1], fused, cosine[::-1]) for q in qrels}
    assert select_rerank_weight(sparse_right, qrels)[0] == 0.0

    # The shipped shares follow their pair in either order; other fields get an equal share.
    assert default_rerank_weight(("bm25", "splade-tiny")) == 0.5
    assert default_rerank_weight(("csr-minilm", "bm25")) == 0.2
    assert default_rerank_weight(("bm25", "csr-minilm-indomain")) == 0.5


def test_never_selects_on_the_reported_split(tmp_path: Path) -> None:
    config = HybridConfig(dataset=str(tmp_path), encoders=("a", "b"),
                          select_on=(str(tmp_path), "test"))  # fmt: skip
    with pytest.raises(ValueError, match="other queries"):
        HybridEvaluation(config).select()


def test_fusion_flags_need_two_fields(capsys: pytest.CaptureFixture) -> None:
    assert lsr(["eval", "--dataset", "x", "--encoder", "bm25", "--fusion", "rrf"]) == 2
    assert "two or more" in capsys.readouterr().err
    assert lsr(["eval", "--dataset", "x", "--encoder", "bm25", "--rerank-weight", "0.5"]) == 2
    assert "two or more" in capsys.readouterr().err


def test_bm25_field_and_fusion_on_real_text(mini_med: Path, tmp_path: Path) -> None:
    """BM25 twice (the encoder field, exact search) equals the baseline, and fusing a field
    with itself keeps its ranking; through the command line, with the JSON written."""
    out = tmp_path / "hybrid.json"
    code = lsr(["eval", "--dataset", str(mini_med), "--encoder", "bm25", "--encoder",
                str(_bm25_copy(tmp_path)), "--fusion", "linear", "--fusion-weights", "0.5,0.5",
                "--no-index", "--no-cache", "--no-progress", "--k", "100",
                "--output-json", str(out)])  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    base = result["bm25 (baseline)"]["nDCG@10"]
    assert result["bm25"]["nDCG@10"] == pytest.approx(base, abs=1e-6)
    assert result["fused linear(0.5,0.5)"]["nDCG@10"] == pytest.approx(base, abs=1e-6)
    assert result["bm25"]["latency_mean_ms"] > 0
    assert result["meta"]["fusion"] == "linear(0.5,0.5)"


def _bm25_copy(tmp_path: Path) -> Path:
    """An unfitted BM25 model directory under another name (a second field)."""
    from encoders.config import EncoderConfig

    folder = tmp_path / "bm25-copy"
    folder.mkdir()
    EncoderConfig(type="bm25", description="BM25, unfitted").save(folder)
    return folder


def test_compared_fusions_are_scored_beside(mini_med: Path, tmp_path: Path) -> None:
    config = HybridConfig(dataset=str(mini_med), encoders=("bm25", str(_bm25_copy(tmp_path))),
                          fusion=FusionSpec("linear", (0.3, 0.7)), compare=(FusionSpec("rrf"),),
                          use_index=False, bm25=False, k=100, progress=False)  # fmt: skip
    result = HybridEvaluation(config).run()
    copy = config.encoders[1]
    assert set(result) == {"bm25", copy, "fused linear(0.3,0.7)", "fused rrf(equal)"}
    # The same ranking twice: any fusion of it is that ranking.
    for name in ("fused linear(0.3,0.7)", "fused rrf(equal)"):
        assert result[name]["nDCG@10"] == pytest.approx(result["bm25"]["nDCG@10"], abs=1e-9)


@needs_minilm
def test_dense_rerank_on_real_text(mini_med: Path, tmp_path: Path) -> None:
    """With the dense share at 0 the re-rank keeps the fused order of the top 100 (same
    nDCG@10); at 1 it is the cosine's order; the row names its share and is timed."""
    fields = ("bm25", str(_bm25_copy(tmp_path)))
    rows = {}
    for weight in (0.0, 1.0):
        config = HybridConfig(dataset=str(mini_med), encoders=fields, fusion=FusionSpec("rrf"),
                              rerank="dense", rerank_weight=weight, use_index=False, bm25=False,
                              k=100, progress=False)  # fmt: skip
        evaluation = HybridEvaluation(config)
        result = evaluation.run()
        rows[weight] = result[f"fused rrf(equal) + dense@100({weight:g})"]
        assert evaluation.meta["rerank"] == {"depth": 100, "dense_weight": weight}
        fused = result["fused rrf(equal)"]["nDCG@10"]
    assert rows[0.0]["nDCG@10"] == pytest.approx(fused, abs=1e-9)
    assert rows[1.0]["nDCG@10"] != pytest.approx(fused, abs=1e-9)
    assert rows[0.0]["latency_mean_ms"] > 0
