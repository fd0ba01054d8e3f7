"""Readers of precomputed vectors: JsonVectorCollection, Seismic jsonl, big-ann .csr, Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import sparse

from app.jobs.corpus import JsonlCorpus, ParquetCorpus
from app.jobs.errors import CorpusError
from app.jobs.sources import open_corpus
from app.jobs.vector_corpus import (
    CsrFileCorpus,
    JsonVectorCorpus,
    ParquetVectorCorpus,
    read_csr_header,
)


def write_bigann_csr(path: Path, matrix: sparse.csr_array) -> Path:
    """The big-ann-benchmarks sparse layout: int64 n_rows, n_cols, nnz, int64 indptr,
    int32 indices, float32 data, little-endian."""
    with open(path, "wb") as handle:
        np.array([*matrix.shape, matrix.nnz], "<i8").tofile(handle)
        np.asarray(matrix.indptr, "<i8").tofile(handle)
        np.asarray(matrix.indices, "<i4").tofile(handle)
        np.asarray(matrix.data, "<f4").tofile(handle)
    return path


def random_csr(n_rows: int, dim: int, seed: int) -> sparse.csr_array:
    rng = np.random.default_rng(seed)
    matrix = sparse.random_array(
        (n_rows, dim), density=0.05, format="csr", dtype=np.float32, rng=rng
    )
    matrix.data[:] = rng.uniform(0.1, 3.0, matrix.nnz).astype(np.float32)
    matrix.sort_indices()
    return matrix


def test_anserini_json_vector_collection_yields_the_given_vectors(tmp_path: Path) -> None:
    path = tmp_path / "jvc.jsonl"
    records = [
        {"id": "a", "contents": "ignored text", "vector": {"apple": 1.5, "pie": 7}},
        {"id": "b", "contents": "", "vector": {}},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    corpus = open_corpus(path)
    assert isinstance(corpus, JsonVectorCorpus) and corpus.has_vectors
    docs = list(corpus)
    assert [d.doc_id for d in docs] == ["a", "b"]
    assert [d.text for d in docs] == ["", ""]  # the contents are never encoded
    assert [d.vector for d in docs] == [{"apple": 1.5, "pie": 7}, {}]
    assert corpus.count() == 2


def test_seismic_jsonl_with_integer_ids(tmp_path: Path) -> None:
    path = tmp_path / "seismic.jsonl"
    path.write_text(json.dumps({"id": 0, "content": "x", "vector": {"12": 0.5}}) + "\n")
    docs = list(open_corpus(path))
    assert docs[0].doc_id == "0" and docs[0].vector == {"12": 0.5}


def test_text_jsonl_is_still_a_text_corpus(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"_id": "a", "text": "hello"}) + "\n")
    assert isinstance(open_corpus(path), JsonlCorpus)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "x", "vector": [1, 2]}', "object of token: weight"),
        ('{"id": "x", "vector": {"a": "heavy"}}', "is not a number"),
        ('{"id": "x", "vector": {"a": true}}', "is not a number"),
        ('{"id": "x", "contents": "no vector"}', "no 'vector'"),
        ('{"vector": {"a": 1}}', "no document id"),
    ],
)
def test_json_vector_lines_that_are_wrong_name_the_line(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "ok", "vector": {"a": 1.0}}) + "\n" + line + "\n")
    with pytest.raises(CorpusError, match=message) as info:
        list(open_corpus(path))
    assert "bad.jsonl:2" in str(info.value)


def test_bigann_csr_rows_are_the_file_rows(tmp_path: Path) -> None:
    matrix = random_csr(37, 300, seed=1)
    path = write_bigann_csr(tmp_path / "base.csr", matrix)
    corpus = open_corpus(path)
    assert isinstance(corpus, CsrFileCorpus)
    assert (corpus.n_rows, corpus.dim, corpus.nnz, corpus.count()) == (37, 300, matrix.nnz, 37)
    docs = list(corpus)
    assert [d.doc_id for d in docs] == [str(i) for i in range(37)]
    for row, doc in enumerate(docs):
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        np.testing.assert_array_equal(doc.vector[0], matrix.indices[lo:hi])
        np.testing.assert_array_equal(doc.vector[1], matrix.data[lo:hi])
    assert [d.doc_id for d in corpus.iter_from(35)] == ["35", "36"]


def test_truncated_or_foreign_csr_files_are_refused(tmp_path: Path) -> None:
    path = write_bigann_csr(tmp_path / "base.csr", random_csr(10, 50, seed=2))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(CorpusError, match="truncated or not a big-ann"):
        open_corpus(path)
    (tmp_path / "tiny.csr").write_bytes(b"\x01\x02")
    with pytest.raises(CorpusError, match="too short"):
        read_csr_header(tmp_path / "tiny.csr")


def test_csr_with_a_broken_indptr_is_refused(tmp_path: Path) -> None:
    matrix = random_csr(5, 40, seed=3)
    matrix.indptr[2] = matrix.indptr[3] + 1  # rows out of order
    path = write_bigann_csr(tmp_path / "broken.csr", matrix)
    with pytest.raises(CorpusError, match="indptr"):
        list(open_corpus(path))


def test_parquet_indices_values_with_and_without_ids(tmp_path: Path) -> None:
    indices = pa.array([[1, 5], [], [7]], pa.list_(pa.int32()))
    values = pa.array([[0.5, 2.0], [], [1.25]], pa.list_(pa.float32()))
    with_ids = tmp_path / "v.parquet"
    pq.write_table(
        pa.table({"doc_id": ["x", "y", "z"], "indices": indices, "values": values}),
        with_ids,
        row_group_size=2,
    )
    corpus = open_corpus(with_ids)
    assert isinstance(corpus, ParquetVectorCorpus)
    docs = list(corpus)
    assert [d.doc_id for d in docs] == ["x", "y", "z"]
    assert [d.vector[0].tolist() for d in docs] == [[1, 5], [], [7]]
    assert [d.vector[1].tolist() for d in docs] == [[0.5, 2.0], [], [1.25]]
    no_ids = tmp_path / "n.parquet"
    pq.write_table(pa.table({"indices": indices, "values": values}), no_ids)
    assert [d.doc_id for d in open_corpus(no_ids)] == ["0", "1", "2"]
    text = tmp_path / "t.parquet"
    pq.write_table(pa.table({"_id": ["a"], "text": ["hello"]}), text)
    assert isinstance(open_corpus(text), ParquetCorpus)


def test_parquet_lists_of_different_lengths_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(
        pa.table(
            {
                "indices": pa.array([[1, 2]], pa.list_(pa.int32())),
                "values": pa.array([[1.0]], pa.list_(pa.float32())),
            }
        ),
        path,
    )
    with pytest.raises(CorpusError, match="equal length"):
        list(open_corpus(path))
