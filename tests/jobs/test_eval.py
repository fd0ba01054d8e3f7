"""``lsr eval``: metrics equal ir_measures on the runs, index close to exact, clear errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import ir_measures
import numpy as np
import pytest

from app.cli import main as lsr
from app.jobs.evaluation.metrics import MEASURES
from app.jobs.evaluation.run import EvalConfig, run_eval
from tests.conftest import needs_minilm

SWEEP = ((5, 0.8), (10, 0.9))


def read_beir_qrels(path: Path) -> dict[str, dict[str, int]]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    qrels: dict[str, dict[str, int]] = {}
    for row in rows:
        qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return qrels


@pytest.fixture(scope="module")
def mini_eval(mini_med: Path, splade_tiny, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("eval")
    config = EvalConfig(dataset=str(mini_med), encoder="splade-tiny", results_dir=out / "res",
                        output_json=out / "metrics.json", sweep=SWEEP, progress=False)  # fmt: skip
    return run_eval(config, encoder=splade_tiny), out


def test_output_json_has_the_design_shape(mini_eval) -> None:
    _, out = mini_eval
    result = json.loads((out / "metrics.json").read_text())
    assert set(result) == {"exact", "index", "bm25"}
    for system in result.values():
        assert set(MEASURES) <= set(system)
        assert all(0.0 <= system[m] <= 1.0 for m in MEASURES)
    assert 0.0 <= result["index"]["recall_vs_exact@10"] <= 1.0
    assert result["exact"]["latency_p99_ms"] >= result["exact"]["latency_mean_ms"] * 0.5 > 0


def test_metrics_equal_ir_measures_on_the_written_runs(mini_eval, mini_med: Path) -> None:
    evaluation, out = mini_eval
    qrels = read_beir_qrels(mini_med / "qrels" / "test.tsv")
    for system in ("exact", "index", "bm25"):
        run_file = out / "res" / "runs" / f"{system}.trec"
        run = list(ir_measures.read_trec_run(str(run_file)))
        assert len({r.query_id for r in run}) == len(qrels)
        independent = ir_measures.calc_aggregate(list(MEASURES.values()), qrels, run)
        for name, measure in MEASURES.items():
            assert evaluation.result[system][name] == pytest.approx(independent[measure], abs=1e-9)


def test_index_is_within_one_percent_of_exact(mini_eval) -> None:
    evaluation, _ = mini_eval
    exact, index = evaluation.result["exact"]["nDCG@10"], evaluation.result["index"]["nDCG@10"]
    assert exact > 0.3  # splade-tiny finds relevant abstracts; not a degenerate run
    assert abs(index - exact) <= 0.01 * exact
    assert evaluation.result["index"]["recall_vs_exact@10"] >= 0.9


def test_report_plot_and_sweep_are_written(mini_eval) -> None:
    evaluation, out = mini_eval
    details = json.loads((out / "res" / "results.json").read_text())
    assert [(p["query_cut"], p["heap_factor"]) for p in details["sweep"]] == list(SWEEP)
    assert details["meta"]["judged_queries"] == 5
    report = (out / "res" / "report.md").read_text()
    assert "nDCG@10" in report and "recall_vs_exact@10" in report
    pytest.importorskip("matplotlib")
    assert (out / "res" / "recall_latency.png").stat().st_size > 1000


def test_bm25_scifact_is_near_published(shared_data: Path, tmp_path: Path) -> None:
    config = EvalConfig(dataset=str(shared_data / "scifact"), index=False, progress=False,
                        results_dir=tmp_path, write_runs=False)  # fmt: skip
    evaluation = run_eval_bm25_only(config)
    # Anserini flat BM25 on BEIR SciFact: nDCG@10 0.679; bm25s + stemming here: 0.676 / 0.913.
    assert abs(evaluation["nDCG@10"] - 0.679) <= 0.01
    assert evaluation["nDCG@10"] == pytest.approx(0.676, abs=0.002)
    assert evaluation["R@100"] == pytest.approx(0.913, abs=0.002)


def run_eval_bm25_only(config: EvalConfig) -> dict[str, float]:
    from app.jobs.evaluation.bm25 import BM25Baseline
    from app.jobs.evaluation.datasets import load_eval_dataset
    from app.jobs.evaluation.metrics import evaluate_run
    from app.jobs.evaluation.runs import hits_to_run

    data = load_eval_dataset(config.dataset)
    docs = list(data.corpus)
    qids = list(data.queries)
    rows, scores = (
        BM25Baseline().index([d.text for d in docs]).search([data.queries[q] for q in qids], k=1000)
    )
    return evaluate_run(data.qrels, hits_to_run(qids, rows, scores, [d.doc_id for d in docs]))


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ("/no/such/folder", "no such folder"),
        ("scifact", "needs the network"),
        ("beir/nfcorpus", "needs the network"),
        ("msmarco-passage/dev/small", "network|pip install ir_datasets"),
        ("msmarco-passage/trec-dl-2019/judged", "network|pip install ir_datasets"),
    ],
)
def test_cli_unavailable_datasets_fail_clearly(
    offline: None, capsys: pytest.CaptureFixture, tmp_path: Path, dataset: str, message: str
) -> None:
    code = lsr(["eval", "--dataset", dataset, "--results-dir", str(tmp_path), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "lsr eval: error:" in err
    assert any(m in err for m in message.split("|"))


def test_cli_bad_arguments(shared_data: Path, capsys: pytest.CaptureFixture, tmp_path: Path):
    base = ["eval", "--results-dir", str(tmp_path), "--no-progress"]
    assert lsr([*base, "--dataset", str(shared_data / "med" / "queries.jsonl")]) == 2
    assert "BEIR folder" in capsys.readouterr().err
    assert lsr([*base, "--dataset", str(shared_data / "med"), "--sweep", "5-0.8"]) == 2
    assert "query_cut:heap_factor" in capsys.readouterr().err
    assert lsr([*base, "--dataset", str(shared_data / "med"), "--split", "dev"]) == 2
    assert "split 'dev'" in capsys.readouterr().err
    assert lsr([*base, "--dataset", str(shared_data / "med"), "--k", "5"]) == 2
    assert "k must be at least 10" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cranfield", "med"])
def test_full_collection_index_within_one_percent(
    shared_data: Path, splade_tiny, tmp_path: Path, name: str
) -> None:
    config = EvalConfig(dataset=str(shared_data / name), bm25=False, sweep=(), progress=False,
                        latency_queries=20, results_dir=tmp_path)  # fmt: skip
    result = run_eval(config, encoder=splade_tiny).result
    assert (
        abs(result["index"]["nDCG@10"] - result["exact"]["nDCG@10"])
        <= 0.01 * result["exact"]["nDCG@10"]
    )
    # splade-tiny on Cranfield, measured independently for the issue: nDCG@10 0.363.
    if name == "cranfield":
        assert result["exact"]["nDCG@10"] == pytest.approx(0.363, abs=0.005)


def test_cli_eval_end_to_end_with_cache(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from tests.jobs.conftest import make_mini_beir

    tiny = make_mini_beir(shared_data / "cranfield", tmp_path / "cran", 2, 12)
    argv = [
        "eval",
        "--dataset",
        str(tiny),
        "--encoder",
        "splade-tiny",
        "--no-progress",
        "--sweep",
        "10:0.9",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--results-dir",
        str(tmp_path / "res"),
        "--output-json",
        str(tmp_path / "m.json"),
    ]
    assert lsr(argv) == 0
    out = capsys.readouterr().out
    assert "nDCG@10" in out and "exact" in out and "bm25" in out
    first = json.loads((tmp_path / "m.json").read_text())
    assert lsr(argv) == 0  # second run: documents come from the cache
    details = json.loads((tmp_path / "res" / "results.json").read_text())
    assert "documents_from_cache" in details["meta"]
    second = json.loads((tmp_path / "m.json").read_text())
    for system in ("exact", "index", "bm25"):
        for name in MEASURES:
            assert second[system][name] == first[system][name]


def test_document_cache_key_follows_corpus_and_model_files(shared_data: Path, tmp_path: Path):
    """The key is the corpus and the model's content fingerprint: retrained weights under the
    same name miss the cache, a rewritten model card does not."""
    from app.jobs.evaluation.run import Evaluation
    from app.jobs.sources import open_corpus

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert"}')
    (model / "model.safetensors").write_bytes(b"1")
    config = EvalConfig(dataset=str(shared_data / "med"), encoder=str(model), cache_dir=tmp_path)
    evaluation = Evaluation(config)
    med, cisi = open_corpus(shared_data / "med"), open_corpus(shared_data / "cisi")
    first = evaluation.cache_path(med)
    assert first == evaluation.cache_path(med) != evaluation.cache_path(cisi)
    (model / "README.md").write_text("a model card, rewritten")
    assert evaluation.cache_path(med) == first
    (model / "model.safetensors").write_bytes(b"retrained")
    assert evaluation.cache_path(med) != first
    assert Evaluation(EvalConfig(dataset="x", cache_dir=None)).cache_path(med) is None


def test_warm_search_takes_the_one_query_and_the_batch_path() -> None:
    """No first-use compile inside a timed batch: the warm-up runs one query, then a batch
    large enough for the index's batch (``prange``) kernel, on the given search."""
    import numpy as np
    from scipy import sparse

    from app.jobs.evaluation.run import warm_search
    from index.seismic import SERIAL_BATCH

    queries = sparse.csr_array(np.eye(100, 20, dtype=np.float32))
    sizes: list[int] = []
    warm_search(lambda q: sizes.append(q.shape[0]), queries)
    assert sizes[0] == 1 and sizes[1] > SERIAL_BATCH


@needs_minilm
def test_csr_documents_are_codes_of_the_cached_dense_embeddings(
    mini_med: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CSR model's documents are its codes of the dense embeddings, made once a corpus and
    cached: the same codes as encoding the texts, and a second CSR model over the same dense
    model (an adapted one, another setting) sends no document through the transformer."""
    import shutil

    from app.jobs.evaluation.run import Evaluation
    from encoders import load_encoder, resolve_model_dir

    general = load_encoder("csr-minilm", device="cpu")
    evaluation = Evaluation(
        EvalConfig(dataset=str(mini_med), encoder="csr-minilm", cache_dir=tmp_path, progress=False),
        encoder=general,
    )
    data, _, doc_texts = evaluation.load()
    docs, _ = evaluation.encode(data.corpus, doc_texts, ["a query"])
    assert len(list(tmp_path.glob("dense-*.npy"))) == 1
    direct = general.encode_documents(doc_texts)
    assert np.array_equal(docs.indptr, direct.indptr)
    assert np.array_equal(docs.indices, direct.indices)
    np.testing.assert_allclose(docs.data, direct.data, atol=1e-5)

    other_dir = tmp_path / "other"
    shutil.copytree(resolve_model_dir("csr-minilm", fetch=False), other_dir)
    other = load_encoder(str(other_dir), device="cpu", normalize=False)
    embedded: list[int] = []
    real_embed = other.embedder.embed
    monkeypatch.setattr(
        other.embedder, "embed", lambda t, **kw: embedded.append(len(t)) or real_embed(t, **kw)
    )
    second = Evaluation(
        EvalConfig(
            dataset=str(mini_med), encoder=str(other_dir), cache_dir=tmp_path, progress=False
        ),
        encoder=other,
    )
    codes, queries = second.encode(data.corpus, doc_texts, ["a query"])
    assert embedded == [1]  # the query alone
    assert codes.shape == docs.shape and queries.shape == (1, other.dim)
    with pytest.raises(ValueError, match="embeddings for"):
        other.encode_documents(doc_texts, embeddings=np.zeros((1, 384), np.float32))
