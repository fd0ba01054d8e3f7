"""Vocabularies of given vectors: encoder, ids, build, file; bad keys and weights refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.jobs.errors import CorpusError
from app.jobs.indexing.vocab import Vocabulary, load_saved, vectors_to_csr
from app.storage.vectors import MAX_DIM, VectorError


def test_ids_vocabulary_takes_column_numbers_as_strings() -> None:
    matrix = vectors_to_csr(
        ["a", "b"], [{"7": 1.5, "2": 0.25}, {"0": 3.0}], Vocabulary.ids(), dim=10
    )
    assert matrix.shape == (2, 10)
    assert matrix.indptr.tolist() == [0, 2, 3]
    assert matrix.indices.tolist() == [2, 7, 0]  # sorted within each row
    assert matrix.data.tolist() == [0.25, 1.5, 3.0]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("apple", "not a column number"),
        ("\u00b2", "not a column number"),  # str.isdigit() is true for a superscript two
        ("99999999999999999999", f">= {MAX_DIM}"),
    ],
)
def test_ids_vocabulary_refuses_keys_that_are_not_column_numbers(key: str, message: str) -> None:
    with pytest.raises(VectorError, match=message) as info:
        vectors_to_csr(["d1"], [{key: 1.0}], Vocabulary.ids(), dim=None)
    assert "'d1'" in str(info.value)


def test_built_vocabulary_numbers_tokens_in_order_of_first_use() -> None:
    vocab = Vocabulary.build()
    matrix = vectors_to_csr(
        ["a", "b"], [{"pie": 1.0, "apple": 2.0}, {"apple": 0.5, "tart": 4.0}], vocab, dim=None
    )
    assert vocab.tokens == ["pie", "apple", "tart"]
    assert matrix.shape == (2, 3)
    assert matrix.toarray().tolist() == [[1.0, 2.0, 0.0], [0.0, 0.5, 4.0]]
    resumed = Vocabulary.build(vocab.tokens)
    again = vectors_to_csr(["c"], [{"tart": 1.0, "crumble": 1.0}], resumed, dim=None)
    assert resumed.tokens == ["pie", "apple", "tart", "crumble"]
    assert again.indices.tolist() == [2, 3]


def test_fixed_vocabulary_rejects_unknown_tokens(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("[PAD]\napple\npie\n")
    vocab = Vocabulary.from_file(tmp_path / "vocab.txt")
    assert vocab.dim == 3
    matrix = vectors_to_csr(["a"], [{"pie": 2.0}], vocab, vocab.dim)
    assert matrix.indices.tolist() == [2]
    with pytest.raises(VectorError, match="'tart' is not in the file vocabulary"):
        vectors_to_csr(["a"], [{"tart": 1.0}], vocab, vocab.dim)


def test_vocabulary_files_json_and_save_round_trip(tmp_path: Path) -> None:
    (tmp_path / "v.json").write_text(json.dumps(["x", "y"]))
    vocab = Vocabulary.from_file(tmp_path / "v.json")
    assert vocab.tokens == ["x", "y"]
    vocab.save(tmp_path / "saved.json")
    assert load_saved(tmp_path / "saved.json") == ["x", "y"]
    assert load_saved(tmp_path / "missing.json") == []
    (tmp_path / "bad.json").write_text('{"x": 0}')
    with pytest.raises(CorpusError, match="JSON list of tokens"):
        Vocabulary.from_file(tmp_path / "bad.json")


def test_column_pairs_keep_their_exact_weights() -> None:
    cols = np.array([9, 3], np.int64)
    weights = np.array([0.1, 1e-3], np.float32)
    matrix = vectors_to_csr(["a"], [(cols, weights)], Vocabulary.ids(), dim=12)
    assert matrix.indices.tolist() == [3, 9]
    assert matrix.data.tolist() == [weights[1], weights[0]]  # float32 bits unchanged
