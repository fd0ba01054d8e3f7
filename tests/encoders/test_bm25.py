"""The BM25 encoder: its inner products are the eval's BM25 baseline scores, so it ranks alike."""

from __future__ import annotations

import numpy as np
import pytest

from encoders import EncoderError, load_encoder
from encoders.bm25 import BM25Encoder, BM25Settings
from encoders.training.retrieval import doc_text, read_jsonl

DOCS = ["The cats are running fast", "a dog ran", "cats and dogs", ""]


def test_weights_are_lucene_bm25() -> None:
    enc = BM25Encoder().fit(DOCS)
    assert enc.feature_names == ["cat", "dog", "fast", "ran", "run"]
    assert enc.stats.df.tolist() == [2, 2, 1, 1, 1] and enc.stats.avgdl == 1.75
    doc = enc.encode_documents(["cats running cats"]).toarray()[0]
    idf_cat = np.log1p((4 - 2 + 0.5) / (2 + 0.5))
    norm = 0.9 * (1 - 0.4 + 0.4 * 3 / 1.75)
    assert doc[0] == pytest.approx(idf_cat * 2 / (2 + norm), rel=1e-6)
    query = enc.encode_queries(["cat cats dog", "the of", ""])
    assert query.toarray().tolist()[0][:2] == [2.0, 1.0]  # a term said twice counts twice
    assert query[[1, 2]].nnz == 0 and query.dtype == np.float32


def test_unfitted_is_an_error_and_save_load_round_trip(tmp_path) -> None:
    enc = load_encoder("bm25")
    with pytest.raises(EncoderError, match="fit"):
        enc.encode_documents(["text"])
    enc.fit(DOCS).save(tmp_path / "bm25")
    again = load_encoder(tmp_path / "bm25", device="cpu")
    assert again.feature_names == enc.feature_names
    texts = ["cats ran", "dogs"]
    assert (again.encode_documents(texts) != enc.encode_documents(texts)).nnz == 0
    assert load_encoder(tmp_path / "bm25", k1=1.2).settings == BM25Settings(k1=1.2)


@pytest.mark.parametrize("name", ["cranfield", "med"])
def test_same_ranking_as_the_eval_baseline(shared_data, name) -> None:
    """Exact inner-product search over the encoder's vectors = app/jobs/evaluation/bm25.py's bm25s
    ranking on a shared collection (scores equal to float32 rounding; ties aside)."""
    from app.jobs.evaluation.bm25 import BM25Baseline

    folder = shared_data / name
    docs = [doc_text(d) for d in read_jsonl(folder / "corpus.jsonl")]
    queries = [q["text"] for q in read_jsonl(folder / "queries.jsonl")]
    want_rows, want_scores = BM25Baseline().index(docs).search(queries, k=10)
    enc = BM25Encoder().fit(docs)
    scores = (enc.encode_queries(queries) @ enc.encode_documents(docs).T).toarray()
    got_scores = -np.sort(-scores, axis=1)[:, :10]
    np.testing.assert_allclose(got_scores, want_scores, rtol=1e-5, atol=1e-5)
    got_rows = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    differ = (got_rows != want_rows).any(axis=1)
    for q in np.flatnonzero(differ):  # only the order of equal scores may differ
        picked = scores[q, want_rows[q][want_rows[q] >= 0]]
        np.testing.assert_allclose(picked, got_scores[q][: len(picked)], rtol=1e-5, atol=1e-5)
    assert differ.mean() < 0.05
