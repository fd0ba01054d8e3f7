"""Token-budget batching: the plan's invariants, and results that depend on the texts alone."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from encoders import load_encoder
from encoders.batching import (
    Batcher,
    BatchPolicy,
    cut_batches,
    load_tokenizer,
    plan_batches,
    sort_by_length,
    truncating_copy,
    window_bounds,
)
from encoders.errors import EncoderError

SMALL = BatchPolicy(token_budget=60, max_texts=5, first_window=4, max_window=16)


def _plan(lengths: np.ndarray, policy: BatchPolicy) -> list[np.ndarray]:
    """The plan over rows 0..n-1 taken in that order, with ``lengths`` as token counts."""
    order = np.arange(len(lengths))
    tokenize = lambda rows: [[7] * int(lengths[r]) for r in rows]  # noqa: E731
    return [rows for rows, _ in plan_batches(order, policy, tokenize)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 100), min_size=0, max_size=200),
    st.integers(1, 300),
    st.integers(1, 9),
    st.integers(1, 8),
)
def test_plan_covers_every_row_once_within_budget(lengths, budget, max_texts, first) -> None:
    lengths = np.array(lengths, np.int64)
    policy = BatchPolicy(budget, max_texts, first_window=first, max_window=4 * first)
    batches = _plan(lengths, policy)
    rows = np.concatenate(batches) if batches else np.zeros(0, np.int64)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    for batch in batches:
        assert 1 <= len(batch) <= max_texts
        padded = len(batch) * lengths[batch].max()
        assert padded <= budget or len(batch) == 1  # a text over the budget goes alone
        assert (np.diff(lengths[batch]) <= 0).all()  # longest first within a batch
    assert [r.tolist() for r in _plan(lengths, policy)] == [r.tolist() for r in batches]


def test_fixed_batch_size_ignores_the_budget() -> None:
    lengths = np.array([90, 80, 70, 10, 10, 10, 5])
    sizes = cut_batches(lengths, BatchPolicy(token_budget=1, batch_size=3))
    assert sizes == [(3, True), (3, True), (1, False)]
    assert cut_batches(lengths, BatchPolicy(token_budget=100, max_texts=10)) == [
        (1, True),
        (1, True),
        (1, True),
        (7 - 3, False),
    ]


def test_unfilled_last_batch_joins_the_next_window() -> None:
    # Windows of 4 then 8 texts: the first window's short tail waits for the next one.
    lengths = np.array([30, 30, 2, 2, 30, 30, 2, 2, 2, 2, 2, 2])
    assert window_bounds(len(lengths), SMALL) == [(0, 4), (4, 12)]
    batches = _plan(lengths, SMALL)
    assert [b.tolist() for b in batches] == [[0, 1], [4, 5], [2, 3, 6, 7, 8], [9, 10, 11]]


def test_bad_policy_is_an_error() -> None:
    with pytest.raises(EncoderError, match="token_budget"):
        BatchPolicy(token_budget=0)
    with pytest.raises(EncoderError, match="batch_size"):
        BatchPolicy(batch_size=0)


def test_device_defaults() -> None:
    gpu, cpu = BatchPolicy.for_device("cuda:1"), BatchPolicy.for_device("cpu")
    assert gpu.token_budget > cpu.token_budget and gpu.batch_size is None


def test_threaded_batcher_equals_inline_and_stops_early(splade_tiny_dir) -> None:
    tok = truncating_copy(load_tokenizer(splade_tiny_dir), 64)
    texts = [("word " * (i % 37 + 1)).strip() for i in range(300)]
    order = sort_by_length(texts, np.arange(len(texts)))
    policy = BatchPolicy(token_budget=400, max_texts=64, first_window=16, max_window=64)
    inline = [
        (rows.tolist(), len(ids)) for rows, ids in plan_batches(order, policy, _tok(tok, texts))
    ]
    threaded = [
        (b.rows.tolist(), len(b.rows)) for b in Batcher(tok, 0).batches(texts, order, policy)
    ]
    assert threaded == inline
    before = threading.active_count()
    batches = Batcher(tok, 0, threads=2, prefetch=1).batches(texts, order, policy)
    next(batches)
    batches.close()  # the consumer stops: the producer thread must end
    assert threading.active_count() == before


def _tok(tok, texts):
    return lambda rows: [e.ids for e in tok.encode_batch([texts[r] for r in rows])]


def test_budget_batches_equal_text_by_text(splade_tiny) -> None:
    texts = [f"{w} " * n for n, w in zip([3, 40, 1, 12, 90, 7, 2], "abcdefg", strict=True)]
    texts += ["", "   "]
    together = splade_tiny.encode_documents(texts, token_budget=128).toarray()
    alone = np.vstack([splade_tiny.encode_documents([t]).toarray() for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert not together[-2:].any()


DETERMINISM_SCRIPT = """
import hashlib, sys
from dataclasses import replace
from encoders import load_encoder
from encoders.batching import BatchPolicy
enc = load_encoder(sys.argv[1], device="cpu", num_threads=int(sys.argv[2]))
enc.policy = replace(enc.policy, first_window=8, max_window=32)
texts = [line.rstrip("\\n") for line in open(sys.argv[3], encoding="utf-8")]
m = enc.encode_documents(texts)
print(hashlib.sha256(m.indptr.tobytes() + m.indices.tobytes() + m.data.tobytes()).hexdigest())
"""


def _digest(matrix) -> str:
    parts = (matrix.indptr, matrix.indices, matrix.data)
    return hashlib.sha256(b"".join(p.tobytes() for p in parts)).hexdigest()


def test_same_texts_same_bytes_in_any_process(splade_tiny_dir, shared_data, tmp_path) -> None:
    """The Ray path's contract: one list of texts gives byte-identical vectors in this
    process and in a fresh one with another torch thread count (batches do not depend on
    the process, the threads or the windows' timing)."""
    with gzip.open(shared_data / "vectors" / "packages_docs.txt.gz", "rt") as fh:
        texts = [next(fh).rstrip("\n") for _ in range(120)]
    texts[5] = ""
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    enc = load_encoder(str(splade_tiny_dir), device="cpu", num_threads=1)
    enc.policy = replace(enc.policy, first_window=8, max_window=32)
    here = _digest(enc.encode_documents(texts))
    assert _digest(enc.encode_documents(texts)) == here
    threads = "2" if len(__import__("os").sched_getaffinity(0)) > 1 else "1"
    out = subprocess.run(
        [sys.executable, "-c", DETERMINISM_SCRIPT, str(splade_tiny_dir), threads, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip().splitlines()[-1] == here


@pytest.mark.slow
def test_token_sort_wastes_little_padding(splade_tiny_dir, shared_data) -> None:
    """Sorted by characters, 20,000 docstring texts in batches of 512 waste ~95% of their
    padded tokens; the GPU plan (token-sorted windows) wastes under 10% (7.7%)."""
    tok = truncating_copy(load_tokenizer(splade_tiny_dir), 256)
    with gzip.open(shared_data / "vectors" / "docstring_docs.txt.gz", "rt") as fh:
        texts = [next(fh).rstrip("\n") for _ in range(20000)]
    order = sort_by_length(texts, np.arange(len(texts)))
    policy = BatchPolicy.for_device("cuda")
    batches = list(plan_batches(order, policy, _tok(tok, texts)))
    real = sum(len(x) for _, ids in batches for x in ids)
    padded = sum(len(ids) * max(map(len, ids)) for _, ids in batches)
    assert padded / real < 1.10
    lengths = np.array([len(tok.encode(t).ids) for t in texts])
    by_chars = sum(
        len(order[i : i + 512]) * lengths[order[i : i + 512]].max()
        for i in range(0, len(order), 512)
    )
    assert by_chars / real > 1.5


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_second_gpu_gives_the_same_bytes(splade_tiny_dir) -> None:
    """One worker per GPU: ``cuda:1`` runs there (Triton launches on the current device) and
    writes the bytes ``cuda:0`` writes."""
    texts = [
        f"{w} " * n for n, w in zip([3, 40, 1, 12, 90, 7, 2] * 50, "abcdefg" * 50, strict=True)
    ]
    first = load_encoder(str(splade_tiny_dir), device="cuda:0").encode_documents(texts)
    second_enc = load_encoder(str(splade_tiny_dir), device="cuda:1")
    assert second_enc.doc_model.decoder_bias.device == torch.device("cuda:1")
    assert _digest(second_enc.encode_documents(texts)) == _digest(first)


def test_dense_embedder_lanes_give_the_same_bytes() -> None:
    """CSR's embedder on the CPU: batches by token budget, side by side in lanes of one
    torch thread; the embeddings do not depend on the number of lanes."""
    from encoders.csr_embedder import DenseEmbedder
    from encoders.errors import ModelNotFoundError
    from encoders.resources import cpu_lanes

    try:
        one = DenseEmbedder(device="cpu", token_budget=64, lanes=1)
    except ModelNotFoundError as exc:
        pytest.skip(f"all-MiniLM-L6-v2 not installed ({exc})")
    cpu_lanes(2)  # one torch thread per op, as the loader sets it
    two = DenseEmbedder(device="cpu", token_budget=64, lanes=2)
    texts = [f"{w} " * n for n, w in zip([3, 40, 1, 12, 9, 7, 2], "abcdefg", strict=True)]
    a, b = one.embed(texts), two.embed(texts)
    assert a.tobytes() == b.tobytes()
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
