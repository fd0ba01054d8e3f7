"""SPLADE on splade-tiny (CPU): README fingerprint, plain-transformers reference, input rules."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from encoders import EncoderError, load_encoder

SENTENCES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
FINGERPRINT = np.array([[39.7253, 7.1662, 0.0], [7.1662, 27.0255, 0.1385], [0.0, 0.1385, 26.3539]])
TOP_TERMS = [
    ("today", 2.5437),
    ("lovely", 2.1207),
    ("weather", 2.0432),
    ("summers", 2.0364),
    ("cool", 1.8054),
]


def reference_splade(model_dir: Path, texts: list[str], max_length: int) -> np.ndarray:
    """The formula with no tricks: float32 logits, log1p(relu), masked max over tokens."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForMaskedLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    batch = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_length)
    with torch.inference_mode():
        logits = model(**batch).logits
    weights = torch.log1p(torch.relu(logits)) * batch["attention_mask"][..., None]
    return weights.amax(dim=1).numpy()


def test_readme_fingerprint(splade_tiny) -> None:
    docs = splade_tiny.encode_documents(SENTENCES)
    assert docs.shape == (3, splade_tiny.dim) == (3, 30522)
    assert docs.dtype == np.float32 and docs.indices.dtype == np.int32
    np.testing.assert_allclose((docs @ docs.T).toarray(), FINGERPRINT, atol=2e-3)
    row = docs[[0]].toarray()[0]
    top = np.argsort(-row)[:5]
    assert [splade_tiny.feature_names[i] for i in top] == [t for t, _ in TOP_TERMS]
    np.testing.assert_allclose(row[top], [w for _, w in TOP_TERMS], atol=1e-3)


def _shared_texts(shared_data: Path, n: int) -> list[str]:
    with gzip.open(shared_data / "vectors" / "docstring_docs.txt.gz", "rt") as fh:
        return [next(fh).rstrip("\n") for _ in range(n)]


@pytest.mark.parametrize("dtype,atol", [("float32", 1e-4), ("bfloat16", 1e-2)])
def test_equals_plain_transformers(splade_tiny_dir, shared_data, dtype, atol) -> None:
    texts = _shared_texts(shared_data, 24) + SENTENCES
    enc = load_encoder(str(splade_tiny_dir), device="cpu", dtype=dtype, max_length=128)
    ours = enc.encode_documents(texts, batch_size=8).toarray()
    ref = reference_splade(splade_tiny_dir, texts, max_length=128)
    assert np.abs(ours - ref).max() <= atol
    assert (ours > 0).sum(axis=1).min() > 10


def test_cpu_query_path_equals_plain_transformers(splade_tiny_dir, shared_data) -> None:
    """Queries on the CPU take the packed TorchScript body and the bf16-screened head; the
    weights are still float32's (the screen only decides which columns to compute)."""
    texts = [t[:300] for t in _shared_texts(shared_data, 40)] + SENTENCES + ["a"]
    enc = load_encoder(str(splade_tiny_dir), device="cpu")
    enc.query_model.screen = "bf16"  # checked on every CPU, used where it pays (fast_screen)
    ours = enc.encode_queries(texts, batch_size=8).toarray()
    assert enc.query_model._packed is not None  # BERT: the packed body is in use
    ref = reference_splade(splade_tiny_dir, texts, max_length=enc.config.query_max_length)
    assert np.abs(ours - ref).max() <= 1e-4
    assert np.array_equal(ours > 1e-4, ref > 1e-4)
    one_by_one = np.vstack([enc.encode_queries([t]).toarray() for t in texts[:6]])
    np.testing.assert_allclose(one_by_one, ours[:6], atol=1e-5)


def test_cpu_document_screen_equals_full_head(splade_tiny_dir, shared_data) -> None:
    """Documents on the CPU are screened text by text; the weights and the non-zero
    pattern are those of the full float32 head over the whole vocabulary."""
    texts = _shared_texts(shared_data, 30) + SENTENCES
    enc = load_encoder(str(splade_tiny_dir), device="cpu")
    enc.doc_model.screen = "bf16"  # checked on every CPU, used where it pays (fast_screen)
    screened = enc.encode_documents(texts, batch_size=8)
    assert enc.doc_model._screened is not None  # the screened head did run
    policy = enc._policy(8, None)
    full = enc._encode(texts, enc.doc_model, enc._doc_batcher, policy, False, screen=None)
    assert np.abs((screened - full).toarray()).max() <= 1e-5
    assert np.array_equal(screened.toarray() > 1e-5, full.toarray() > 1e-5)


def test_the_screen_is_used_only_where_this_cpu_makes_it_pay(splade_tiny_dir) -> None:
    """Without VNNI / AVX512-BF16 / AMX the low-precision screen is emulated and slower than
    the float32 head, so a CPU model screens exactly when ``fast_screen`` names a screen, and
    the screen it builds is that one."""
    from encoders.kernels.screened_head import fast_screen

    enc = load_encoder(str(splade_tiny_dir), device="cpu")
    screen = fast_screen()
    assert screen in (None, "int8", "bf16")
    for model in (enc.doc_model, enc.query_model):
        assert model.screen == screen and model.can_screen == (screen is not None)
    if screen is not None:
        enc.encode_queries(["a short query"])
        assert enc.query_model._screened.screen == screen


def test_rows_keep_input_order_across_batches(splade_tiny) -> None:
    texts = ["a short one", SENTENCES[0] * 5, "", SENTENCES[2], "x " * 40, SENTENCES[1]]
    together = splade_tiny.encode_documents(texts, batch_size=2).toarray()
    one_by_one = np.vstack([splade_tiny.encode_documents([t]).toarray() for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)


def test_queries_truncate_at_query_max_length(splade_tiny) -> None:
    long_query = " ".join(f"word{i}" for i in range(200))
    q = splade_tiny.encode_queries([long_query])
    d = splade_tiny.encode_documents([long_query])
    assert q.shape == d.shape and 0 < q.nnz < d.nnz


def test_bad_input(splade_tiny) -> None:
    out = splade_tiny.encode_documents(["", "   ", "hello world"])
    assert out.shape == (3, splade_tiny.dim)
    assert list(np.diff(out.indptr)[:2]) == [0, 0] and out[[2]].nnz > 0
    assert splade_tiny.encode_queries([]).shape == (0, splade_tiny.dim)
    assert splade_tiny.encode_documents([""]).nnz == 0
    with pytest.raises(ValueError, match="text 1 is NoneType"):
        splade_tiny.encode_documents(["ok", None])
    with pytest.raises(ValueError, match="text 0 is int"):
        splade_tiny.encode_queries([3])
    with pytest.raises(ValueError, match="single string"):
        splade_tiny.encode_queries("a query")
    with pytest.raises(EncoderError):
        splade_tiny.encode_documents(None)


def test_megabyte_text_is_truncated(splade_tiny) -> None:
    head = "sparse retrieval with learned term weights " * 60
    huge = head + "zebra " * (1_000_000 // 6)
    got = splade_tiny.encode_documents([huge, head])
    assert got.shape == (2, splade_tiny.dim)
    # 256 tokens of the head come first in both, so the vectors match exactly.
    np.testing.assert_allclose(got[[0]].toarray(), got[[1]].toarray(), atol=1e-5)


def test_top_k_and_threshold(splade_tiny_dir) -> None:
    full = load_encoder(str(splade_tiny_dir), device="cpu").encode_documents(SENTENCES).toarray()
    pruned = load_encoder(str(splade_tiny_dir), device="cpu", top_k=5, threshold=0.5)
    got = pruned.encode_documents(SENTENCES).toarray()
    for row_full, row in zip(full, got, strict=True):
        kept = np.flatnonzero(row)
        assert 0 < len(kept) <= 5 and (row[kept] > 0.5).all()
        np.testing.assert_allclose(row[kept], row_full[kept], atol=1e-5)
        assert set(kept) == set(np.argsort(-row_full)[: len(kept)])


def test_feature_names_are_word_pieces(splade_tiny) -> None:
    names = splade_tiny.feature_names
    assert len(names) == splade_tiny.dim and names[0] == "[PAD]" and "weather" in names
