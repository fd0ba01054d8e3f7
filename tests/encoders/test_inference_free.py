"""Inference-free SPLADE built from splade-tiny: documents by the model, queries by IDF."""

from __future__ import annotations

import json

import numpy as np
import pytest

from encoders import EncoderError, load_encoder
from encoders.inference_free import InferenceFreeSpladeEncoder, build_inference_free

CORPUS = [
    "the cat sat on the mat",
    "the dog chased the cat",
    "sparse retrieval with inverted indexes",
    "the weather is lovely today",
]


@pytest.fixture(scope="module")
def inference_free(splade_tiny_dir, tmp_path_factory) -> InferenceFreeSpladeEncoder:
    out = build_inference_free(str(splade_tiny_dir), CORPUS, tmp_path_factory.mktemp("if") / "m")
    enc = load_encoder(str(out), device="cpu")
    assert isinstance(enc, InferenceFreeSpladeEncoder)
    return enc


def test_idf_table_orders_by_document_frequency(inference_free) -> None:
    vocab = inference_free.feature_names
    idf = inference_free.idf
    the, cat, sparse = (vocab.index(t) for t in ("the", "cat", "sparse"))
    assert idf[the] < idf[cat] < idf[sparse]
    n = len(CORPUS)
    np.testing.assert_allclose(idf[the], np.log1p((n - 3 + 0.5) / 3.5), rtol=1e-5)


def test_queries_are_bags_of_idf_weights(inference_free) -> None:
    q = inference_free.encode_queries(["cat cat the sparse", "", "zzzz"])
    assert q.shape == (3, inference_free.dim) and q.dtype == np.float32
    row = q[[0]]
    names = [inference_free.feature_names[i] for i in row.indices]
    assert sorted(names) == ["cat", "sparse", "the"]  # distinct pieces, no [CLS]/[SEP]
    np.testing.assert_allclose(row.data, inference_free.idf[row.indices])
    assert q[[1]].nnz == 0
    with pytest.raises(ValueError, match="text 0 is NoneType"):
        inference_free.encode_queries([None])
    assert inference_free.encode_queries([]).shape == (0, inference_free.dim)


def test_documents_match_the_splade_model(inference_free, splade_tiny) -> None:
    docs = inference_free.encode_documents(CORPUS).toarray()
    np.testing.assert_allclose(docs, splade_tiny.encode_documents(CORPUS).toarray(), atol=1e-5)


def test_query_top_k(inference_free, tmp_path) -> None:
    q = inference_free.encode_queries(["the cat sat on the mat with sparse indexes"]).toarray()[0]
    inference_free.config.top_k = 2
    try:
        top = inference_free.encode_queries(
            ["the cat sat on the mat with sparse indexes"]
        ).toarray()[0]
    finally:
        inference_free.config.top_k = None
    kept = np.flatnonzero(top)
    assert len(kept) == 2 and sorted(top[kept]) == sorted(np.sort(q)[-2:])
    np.testing.assert_allclose(top[kept], q[kept])


def test_opensearch_style_idf_json(splade_tiny_dir, tmp_path) -> None:
    out = build_inference_free(str(splade_tiny_dir), CORPUS, tmp_path / "m")
    (out / "idf.json").write_text(json.dumps({"cat": 3.0, "dog": 1.5, "not-a-token-xyz": 9.0}))
    enc = load_encoder(str(out), device="cpu")
    q = enc.encode_queries(["cat and dog"])
    assert sorted(q.data.tolist()) == [1.5, 3.0]  # "and" is missing from the table: weight 0
    with pytest.raises(EncoderError, match="not empty"):
        build_inference_free(str(splade_tiny_dir), CORPUS, out)
