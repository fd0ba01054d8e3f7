"""The query micro-batcher: a text that fails inside a batch fails only its own request."""

from __future__ import annotations

import asyncio

import pytest

from app.errors import InvalidInputError
from app.services.batcher import QueryBatcher


@pytest.fixture(scope="module")
def splade():
    from encoders import load_encoder

    try:
        return load_encoder("splade-tiny")
    except Exception as exc:  # noqa: BLE001 - no model here: skip with the reason
        pytest.skip(f"splade-tiny not available: {exc}")


def test_a_poisoned_text_fails_alone_in_its_batch(splade) -> None:
    """The encoder itself raises on a lone surrogate; the batch is retried one by one."""
    texts = ["wing flutter", "\ud800 wing", "boundary layer", "heat transfer", "\udfff", "drag"]
    batcher = QueryBatcher(splade, max_batch=32)

    async def all_at_once() -> list:
        return await asyncio.gather(*(batcher.encode(t) for t in texts), return_exceptions=True)

    try:
        results = asyncio.run(all_at_once())
    finally:
        batcher.close()
    alone = [splade.encode_queries([t]) for t in texts if "\ud800" not in t and "\udfff" not in t]
    good = [r for t, r in zip(texts, results, strict=True) if t.isascii()]
    assert len(good) == len(alone) == 4
    for vec, matrix in zip(good, alone, strict=True):
        assert vec.indices.tolist() == sorted(matrix.indices.tolist())
    for text, result in zip(texts, results, strict=True):
        if not text.isascii():
            assert isinstance(result, InvalidInputError), result
