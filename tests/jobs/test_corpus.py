"""Corpus readers: every supported source, the edge cases, and clear errors on bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.jobs.corpus import (
    Document,
    IrDatasetsCorpus,
    JsonlCorpus,
    ParquetCorpus,
    TextLinesCorpus,
)
from app.jobs.errors import CorpusError, DatasetUnavailableError
from app.jobs.sources import open_corpus


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_jsonl_ids_titles_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text(
        json.dumps({"_id": "a", "title": "Title", "text": "body"}) + "\n\n"
        + json.dumps({"id": 7, "text": "no title"}) + "\n"
        + json.dumps({"_id": "c", "title": "only title", "text": ""}) + "\n"
    )  # fmt: skip
    corpus = open_corpus(path)
    assert isinstance(corpus, JsonlCorpus)
    assert list(corpus) == [
        Document("a", "Title body"), Document("7", "no title"), Document("c", "only title")
    ]  # fmt: skip
    assert corpus.count() == 3
    assert [d.doc_id for d in corpus.iter_from(1)] == ["7", "c"]


def test_jsonl_gz_equals_plain(tmp_path: Path) -> None:
    records = [{"_id": str(i), "text": f"text {i}"} for i in range(5)]
    plain = write_jsonl(tmp_path / "c.jsonl", records)
    packed = tmp_path / "c.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert list(open_corpus(packed)) == list(open_corpus(plain))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('["a", "b"]', "JSON object"),
        ('{"text": "no id"}', "no document id"),
        ('{"_id": "x"}', "has no text"),
        ('{"_id": "x", "text": 3}', "non-string text"),
    ],
)
def test_jsonl_bad_records_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"_id": "ok", "text": "fine"}) + "\n" + line + "\n")
    with pytest.raises(CorpusError, match=message) as info:
        list(open_corpus(path))
    assert "bad.jsonl:2" in str(info.value)


def test_text_lines_ids_are_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "t.txt.gz"
    path.write_bytes(gzip.compress(b"first\n\nthird\r\n"))
    corpus = open_corpus(path)
    assert isinstance(corpus, TextLinesCorpus)
    assert list(corpus) == [Document("0", "first"), Document("1", ""), Document("2", "third")]
    assert corpus.count() == 3


def test_parquet_reader_streams_and_joins_title(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    table = pa.table({"doc_id": ["x", "y"], "title": ["T", None], "text": ["one", "two"]})
    pq.write_table(table, path)
    corpus = open_corpus(path)
    assert isinstance(corpus, ParquetCorpus)
    assert list(corpus) == [Document("x", "T one"), Document("y", "two")]
    assert corpus.count() == 2


def test_parquet_without_text_column_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"_id": ["x"], "body_html": ["<p>"]}), path)
    with pytest.raises(CorpusError, match="text column"):
        list(open_corpus(path))


def test_beir_folder_and_its_errors(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "d", "title": "", "text": "x"}])
    assert list(open_corpus(tmp_path)) == [Document("d", "x")]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CorpusError, match="BEIR"):
        open_corpus(empty)


@pytest.mark.parametrize("name", ["missing.jsonl", "./nope", "data.parquet"])
def test_missing_paths_are_errors(tmp_path: Path, name: str) -> None:
    with pytest.raises(CorpusError, match="no such file"):
        open_corpus(name if name.startswith(".") else tmp_path / name)


def test_unknown_suffix_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "corpus.xlsx"
    path.write_bytes(b"x")
    with pytest.raises(CorpusError, match="unknown corpus format"):
        open_corpus(path)


def test_ir_datasets_id_fails_clearly_offline(offline: None) -> None:
    corpus = open_corpus("msmarco-passage")
    assert isinstance(corpus, IrDatasetsCorpus)
    try:
        import ir_datasets  # noqa: F401
    except ImportError:
        with pytest.raises(DatasetUnavailableError, match="pip install ir_datasets"):
            next(iter(corpus))
        return
    with pytest.raises(DatasetUnavailableError, match="needs the network"):
        next(iter(corpus))
    with pytest.raises(CorpusError, match="known ir_datasets id"):
        next(iter(open_corpus("no-such-collection/at-all")))


def test_shared_collections_have_their_documented_sizes(shared_data: Path) -> None:
    expected = {"cranfield": 1400, "cisi": 1460, "cacm": 3204, "med": 1033, "scifact": 5183}
    for name, count in expected.items():
        corpus = open_corpus(shared_data / name)
        assert corpus.count() == count
        assert sum(1 for _ in corpus) == count
