"""``lsr index`` on precomputed vectors: kept exactly, never re-encoded; bad ones refused."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from app.cli import main as lsr
from app.jobs.indexing.job import IndexJobConfig, read_doc_ids, run_index_job
from app.jobs.indexing.shards import ShardStore
from app.jobs.indexing.vocab import load_saved
from tests.jobs.test_vector_corpus import random_csr, write_bigann_csr


def shard_rows(out: Path, dim: int) -> tuple[list[str], list[dict[int, float]]]:
    """Every shard row of a job as ``{column: weight}`` (float32 weights, exact)."""
    ids, matrix = ShardStore(out / "shards").read_all(dim)
    rows = []
    for i in range(matrix.shape[0]):
        lo, hi = matrix.indptr[i], matrix.indptr[i + 1]
        rows.append(
            dict(zip(matrix.indices[lo:hi].tolist(), matrix.data[lo:hi].tolist(), strict=True))
        )
    return ids, rows


def scifact_with_vectors(shared_data: Path, path: Path, vocab: list[str], n: int) -> list[dict]:
    """Anserini JsonVectorCollection lines: real SciFact ``contents`` and made-up vectors
    over ``vocab`` that no encoder would produce from that text."""
    rng = np.random.default_rng(7)
    records = []
    with open(shared_data / "scifact" / "corpus.jsonl") as handle:
        for line in islice(handle, n):
            doc = json.loads(line)
            cols = rng.choice(np.arange(1000, len(vocab)), 6, replace=False)
            weights = np.round(rng.uniform(0.01, 3.0, 6), 5)
            vector = {vocab[c]: float(w) for c, w in zip(cols, weights, strict=True)}
            records.append({"id": doc["_id"], "contents": doc["text"], "vector": vector})
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


def test_json_vector_collection_keeps_the_given_vectors_exactly(
    shared_data: Path, splade_tiny, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Regression: the ``contents`` of JsonVectorCollection lines used to be re-encoded."""
    vocab = splade_tiny.feature_names
    corpus = tmp_path / "jvc.jsonl"
    records = scifact_with_vectors(shared_data, corpus, vocab, 30)
    argv = [
        "index",
        "--corpus",
        str(corpus),
        "--out",
        str(tmp_path / "out"),
        "--shard-size",
        "8",
        "--no-progress",
        "--no-build",
    ]
    assert lsr(argv) == 0  # --encoder splade-tiny by default: it lends its vocabulary only
    assert "vectors          given (dim 30522)" in capsys.readouterr().out
    ids, rows = shard_rows(tmp_path / "out", splade_tiny.dim)
    assert ids == [r["id"] for r in records]
    column = {token: col for col, token in enumerate(vocab)}
    for record, row in zip(records, rows, strict=True):
        given = {column[t]: float(np.float32(w)) for t, w in record["vector"].items()}
        assert row == given


def test_built_vocabulary_resumes_and_is_saved(tmp_path: Path) -> None:
    corpus = tmp_path / "impact.jsonl"
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]
    rng = np.random.default_rng(3)
    lines = []
    for i in range(25):
        picked = rng.choice(words, 3, replace=False)
        lines.append({"id": f"p{i}", "vector": {str(w): int(rng.integers(1, 200)) for w in picked}})
    corpus.write_text("".join(json.dumps(x) + "\n" for x in lines))
    common = {
        "corpus": str(corpus),
        "encoder": "none",
        "vocab": "build",
        "shard_size": 10,
        "progress": False,
        "build_index": False,
    }
    one = run_index_job(IndexJobConfig(out=tmp_path / "one", **common))
    first = run_index_job(IndexJobConfig(out=tmp_path / "two", max_shards=1, **common))
    rest = run_index_job(IndexJobConfig(out=tmp_path / "two", **common))
    assert one.complete and not first.complete and rest.complete and rest.shards_reused == 1
    vocab = load_saved(tmp_path / "one" / "vocab.json")
    assert vocab == load_saved(tmp_path / "two" / "vocab.json") and sorted(vocab) == sorted(words)
    assert one.dim == rest.dim == len(words)
    for name in ("shard-000000.parquet", "shard-000001.parquet", "shard-000002.parquet"):
        first_bytes = (tmp_path / "one" / "shards" / name).read_bytes()
        assert first_bytes == (tmp_path / "two" / "shards" / name).read_bytes()
    _, rows = shard_rows(tmp_path / "one", len(words))
    for line, row in zip(lines, rows, strict=True):
        assert {vocab[c]: w for c, w in row.items()} == line["vector"]


def test_bigann_csr_and_parquet_vectors_with_encoder_none(tmp_path: Path) -> None:
    matrix = random_csr(50, 400, seed=5)
    csr_file = write_bigann_csr(tmp_path / "base.csr", matrix)
    summary = run_index_job(
        IndexJobConfig(
            corpus=str(csr_file),
            encoder="none",
            out=tmp_path / "csr",
            shard_size=16,
            progress=False,
            build_index=False,
        )
    )
    assert summary.vectors == "given" and summary.dim == 400 and summary.documents == 50
    ids, stored = ShardStore(tmp_path / "csr" / "shards").read_all(400)
    assert ids == [str(i) for i in range(50)]
    np.testing.assert_array_equal(stored.indptr, matrix.indptr)
    np.testing.assert_array_equal(stored.indices, matrix.indices)
    np.testing.assert_array_equal(stored.data, matrix.data)

    parquet = tmp_path / "vectors.parquet"
    table = pa.table(
        {
            "doc_id": ["a", "b"],
            "indices": pa.array([[3, 90], [17]], pa.list_(pa.int64())),
            "values": pa.array([[0.5, 1.5], [2.0]], pa.list_(pa.float64())),
        }
    )
    pq.write_table(table, parquet)
    summary = run_index_job(
        IndexJobConfig(
            corpus=str(parquet),
            encoder="none",
            out=tmp_path / "pq",
            progress=False,
            build_index=False,
        )
    )
    assert summary.dim == 91  # the largest column + 1
    assert shard_rows(tmp_path / "pq", 91) == (["a", "b"], [{3: 0.5, 90: 1.5}, {17: 2.0}])


@pytest.mark.parametrize(
    ("vector", "extra", "message"),
    [
        ('{"1": NaN}', [], "weight is nan"),
        ('{"1": -2}', [], "must be >= 0"),
        ('{"1": 1e9}', [], "must be <= 65504"),
        ('{"99999999999999999999": 1}', [], "is >= 16777216"),
        ('{"12": 1}', ["--dim", "10"], "column 12 is outside \\[0, 10\\)"),
        ('{"apple": 1}', [], "not a column number"),
        ('{"notatoken##x": 1}', ["--encoder", "splade-tiny"], "not in the encoder vocabulary"),
    ],
)
def test_bad_vectors_exit_2_naming_the_document(
    tmp_path: Path, capsys: pytest.CaptureFixture, vector: str, extra: list[str], message: str
) -> None:
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text(
        f'{{"id": "fine", "vector": {{"1": 1}}}}\n{{"id": "broken", "vector": {vector}}}\n'
    )
    argv = [
        "index",
        "--corpus",
        str(corpus),
        "--encoder",
        "none",
        "--out",
        str(tmp_path / "o"),
        "--no-progress",
        "--no-build",
        *extra,
    ]
    assert lsr(argv) == 2
    err = capsys.readouterr().err
    assert "'broken'" in err
    assert pytest.importorskip("re").search(message, err), err


def test_text_corpus_with_encoder_none_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    corpus = tmp_path / "texts.jsonl"
    corpus.write_text('{"_id": "a", "text": "words only"}\n')
    argv = ["index", "--corpus", str(corpus), "--encoder", "none", "--out", str(tmp_path / "o")]
    assert lsr(argv) == 2
    assert "--encoder none needs precomputed vectors" in capsys.readouterr().err


def test_given_vectors_build_an_index_and_a_collection_with_their_vocabulary(
    tmp_path: Path,
) -> None:
    from app.main import create_app
    from index import SeismicIndex
    from tests.app.conftest import make_settings

    corpus = tmp_path / "impact.jsonl"
    lines = [
        {"id": f"p{i}", "vector": {f"w{i}": 5.0, f"w{i + 1}": 1.0, "common": 0.5}}
        for i in range(40)
    ]
    corpus.write_text("".join(json.dumps(x) + "\n" for x in lines))
    config = IndexJobConfig(
        corpus=str(corpus),
        encoder="none",
        vocab="build",
        shard_size=16,
        out=tmp_path / "out",
        progress=False,
        collection="impact",
        data_dir=tmp_path / "data",
    )
    summary = run_index_job(config)
    assert summary.complete and summary.collection["documents"] == 40
    vocab = load_saved(tmp_path / "out" / "vocab.json")
    index = SeismicIndex.load(tmp_path / "out" / "index")
    ids = read_doc_ids(tmp_path / "out" / "doc_ids.parquet")
    col = vocab.index("w7")
    rows, _ = index.search_vector(np.array([col], np.int32), np.array([1.0], np.float32), k=2)
    assert [ids[r] for r in rows] == ["p7", "p6"]  # w7 weighs 5 in p7, 1 in p6
    with TestClient(create_app(make_settings(tmp_path / "data"))) as client:
        r = client.post("/v1/collections/impact/search", json={"vector": {"w7": 1.0}, "k": 2})
        assert [h["id"] for h in r.json()["hits"]] == ["p7", "p6"]
        r = client.post("/v1/collections/impact/explain", json={"vector": {"w7": 1.0}, "k": 1})
        assert r.json()["hits"][0]["terms"][0]["token"] == "w7"
        r = client.post("/v1/collections/impact/search", json={"vector": {"unseen": 1.0}})
        assert r.status_code == 422 and "unknown token" in r.json()["error"]["message"]
