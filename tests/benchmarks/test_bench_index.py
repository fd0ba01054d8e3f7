"""bench_index.py end to end on tiny big-ann files: flags, ground truth from a file, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks import bench_index
from benchmarks.index_inputs import load_inputs, load_truth
from index import exact_search
from index.bigann import write_csr, write_gt


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bigann")
    rng = np.random.default_rng(11)
    docs = sp.random_array((600, 80), density=0.08, format="csr", rng=rng, dtype=np.float32)
    queries = sp.random_array((15, 80), density=0.1, format="csr", rng=rng, dtype=np.float32)
    ids, scores = exact_search(docs, queries, k=10)
    # A ground truth that differs from exact_search in one query proves the file is used.
    ids[0] = np.arange(10)
    return {
        "docs": write_csr(root / "base.csr", docs),
        "queries": write_csr(root / "queries.csr", queries),
        "gt": write_gt(root / "gt.bin", ids, scores),
        "root": root,
    }


def has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def run(files: dict[str, Path], *extra: str) -> dict:
    out = files["root"] / "out"
    argv = ["--docs", str(files["docs"]), "--queries", str(files["queries"])]
    argv += ["--points", "80:0.0,2:1.0", "--out", str(out), *extra]
    assert bench_index.main(argv) == 0
    return json.loads(out.with_suffix(".json").read_text())


def test_bigann_files_with_ground_truth_file(files: dict[str, Path]) -> None:
    report = run(files, "--gt", str(files["gt"]), "--no-pyseismic", "--repeat", "2")
    assert report["ground_truth"] == f"file {files['gt']}"
    assert report["exact_search_us_per_query_batched"] is None
    assert report["n_docs"] == 600 and report["n_queries"] == 15 and report["repeat"] == 2
    exhaustive = report["points"][0]
    # Exact on 14 queries, the altered one scores whatever of rows 0..9 it finds.
    assert 13 / 15 < exhaustive["recall@10"] < 1.0
    assert report["machine"]["versions"]["numba"]
    assert set(report["bigann_qps_at_recall_0.9"]) == {"ours", "ours-exact"}
    assert (files["root"] / "out.png").is_file() == has_matplotlib()


def test_without_ground_truth_file_exact_search_is_used(files: dict[str, Path]) -> None:
    report = run(files, "--no-pyseismic", "--n-queries", "10")
    assert report["ground_truth"] == "exact_search" and report["n_queries"] == 10
    assert report["points"][0]["recall@10"] == 1.0
    assert report["best_at_recall"]["0.98"]["ours"]["query_cut"] == 80


def test_with_pyseismic_side_by_side(files: dict[str, Path]) -> None:
    pytest.importorskip("seismic")
    report = run(files, "--n-queries", "10")
    systems = {r["system"] for r in report["points"]}
    assert systems == {"ours", "ours-exact", "pyseismic"}
    first = {r["system"]: r for r in report["points"][:3]}  # the exhaustive point
    assert first["pyseismic"]["recall@10"] == 1.0 and first["pyseismic"]["recall@10_batch"] == 1.0
    assert first["ours-exact"]["recall@10"] == 1.0
    assert report["systems"]["pyseismic"]["index_bytes"] > 0


def test_gt_of_the_wrong_size_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    ids = np.zeros((3, 10), np.int32)
    bad = write_gt(tmp_path / "gt3.bin", ids, ids.astype(np.float32))
    with pytest.raises(ValueError, match="ground truth for 3 queries, the queries file has 15"):
        load_truth(bad, 15, 10)
    with pytest.raises(SystemExit):
        run(files, "--gt", str(bad))


def test_npz_and_jsonl_inputs_give_the_same_matrices(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    docs = sp.random_array((30, 12), density=0.3, format="csr", rng=rng, dtype=np.float32)
    queries = sp.random_array((4, 12), density=0.4, format="csr", rng=rng, dtype=np.float32)
    sp.save_npz(tmp_path / "d.npz", sp.csr_matrix(docs))
    sp.save_npz(tmp_path / "q.npz", sp.csr_matrix(queries))
    for name, m in (("d", docs), ("q", queries)):
        with open(tmp_path / f"{name}.jsonl", "w") as f:
            for r in range(m.shape[0]):
                row = m[[r], :]
                vec = {f"t{c}": float(v) for c, v in zip(row.indices, row.data, strict=True)}
                f.write(json.dumps({"id": str(r), "content": "", "vector": vec}) + "\n")
    args = bench_index.parser().parse_args(
        ["--docs", str(tmp_path / "d.npz"), "--queries", str(tmp_path / "q.npz")]
    )
    npz = load_inputs(args, 10)
    assert (npz.docs != docs).nnz == 0 and npz.truth is None
    args.docs, args.queries = str(tmp_path / "d.jsonl"), str(tmp_path / "q.jsonl")
    jl = load_inputs(args, 10)
    # Token strings get ids in order of first use; scores are what must agree.
    np.testing.assert_allclose(
        (jl.queries @ jl.docs.T).toarray(), (queries @ docs.T).toarray(), rtol=1e-6
    )
    args.queries = str(tmp_path / "q.npz")
    with pytest.raises(ValueError, match="both as .jsonl"):
        load_inputs(args, 10)


def test_sweep_and_generate_still_run(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    argv = ["--generate", "400", "--n-queries", "5", "--points", "30:0.0", "--out", str(out)]
    assert bench_index.main([*argv, "--sweep", "0.1:0.4,0.2:0.5"]) == 0
    rows = json.loads(out.with_suffix(".json").read_text())["results"]
    assert len(rows) == 2 and all(r["recall@10"] == 1.0 for r in rows)
