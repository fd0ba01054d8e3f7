"""Evaluation datasets: judged-query filtering, qrels parsing, golden counts, offline errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.jobs.errors import CorpusError, DatasetUnavailableError
from app.jobs.evaluation.datasets import load_eval_dataset, read_qrels_tsv


@pytest.mark.parametrize(
    ("name", "documents", "judged", "total"),
    [("cranfield", 1400, 225, 225), ("cisi", 1460, 76, 112), ("cacm", 3204, 52, 65),
     ("med", 1033, 30, 30), ("scifact", 5183, 300, 1109)],
)  # fmt: skip
# CACM's queries.jsonl holds 65 queries (ids 0..64; the data README's table says 64).
def test_shared_collections_keep_judged_queries_only(
    shared_data: Path, name: str, documents: int, judged: int, total: int
) -> None:
    data = load_eval_dataset(str(shared_data / name))
    assert len(data.queries) == judged == len(data.qrels)
    assert data.n_queries_total == total
    assert set(data.queries) == set(data.qrels)
    assert data.corpus.count() == documents


def test_scifact_train_split(shared_data: Path) -> None:
    data = load_eval_dataset(str(shared_data / "scifact"), split="train")
    assert len(data.queries) == 809


def test_qrels_header_and_bad_scores(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_text("query-id\tcorpus-id\tscore\n1\td1\t2\n1\td2\t0\n2\td3\t1\n")
    assert read_qrels_tsv(path) == {"1": {"d1": 2, "d2": 0}, "2": {"d3": 1}}
    path.write_text("query-id\tcorpus-id\tscore\n1\td1\thigh\n")
    with pytest.raises(CorpusError, match="not an integer"):
        read_qrels_tsv(path)


def test_folder_without_judged_queries_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d", "text": "x"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q", "text": "x"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nother\td\t1\n")
    with pytest.raises(CorpusError, match="no judged queries"):
        load_eval_dataset(str(tmp_path))


def test_beir_name_offline_says_it_needs_the_network(offline: None) -> None:
    with pytest.raises(DatasetUnavailableError, match="needs the network") as info:
        load_eval_dataset("beir/scifact")
    assert "--dataset /path/to/scifact" in str(info.value)
