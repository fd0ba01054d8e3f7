"""Tokenisation for throughput: length-sorted batches, tokenised ahead in background threads.

The fast (Rust) tokenizer releases the GIL in ``encode_batch``, so a small thread pool can
tokenise the next batches while the GPU works on the current one. Texts are sorted by
character length (a cheap proxy for token length) so that a batch holds texts of similar
length and little compute goes to padding.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from encoders.errors import ModelNotFoundError


@dataclass
class TokenBatch:
    """One padded batch: ``input_ids`` (B, L) int32, ``lengths`` (B,) int32, ``rows`` (B,)."""

    input_ids: torch.Tensor
    lengths: torch.Tensor
    rows: np.ndarray


def load_tokenizer(model_dir: str | Path) -> Tokenizer:
    """The fast tokenizer of a model directory (``tokenizer.json``, else via transformers)."""
    path = Path(model_dir) / "tokenizer.json"
    if path.is_file():
        tok = Tokenizer.from_file(str(path))
    else:
        from transformers import AutoTokenizer

        try:
            hf = AutoTokenizer.from_pretrained(str(model_dir))
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(
                f"no tokenizer in {model_dir} (looked for tokenizer.json)"
            ) from exc
        backend = getattr(hf, "backend_tokenizer", None)
        if backend is None:
            raise ModelNotFoundError(f"{model_dir} has only a slow tokenizer; a fast one is needed")
        tok = Tokenizer.from_str(backend.to_str())
    tok.no_padding()
    tok.no_truncation()
    return tok


def truncating_copy(tok: Tokenizer, max_length: int) -> Tokenizer:
    """A copy of ``tok`` that truncates to ``max_length`` tokens (special tokens included)."""
    copy = Tokenizer.from_str(tok.to_str())
    copy.no_padding()
    copy.enable_truncation(max_length)
    return copy


def pad_batch(encodings: list, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Encodings -> (B, L) int32 ids padded with ``pad_id`` and (B,) int32 lengths."""
    id_lists = [enc.ids for enc in encodings]
    lengths = np.fromiter((len(ids) for ids in id_lists), np.int32, len(id_lists))
    ids = np.full((len(id_lists), int(lengths.max(initial=1))), pad_id, np.int32)
    for i, row in enumerate(id_lists):
        ids[i, : len(row)] = row
    return ids, lengths


def sort_by_length(texts: list[str], rows: np.ndarray) -> np.ndarray:
    """``rows`` ordered by decreasing text length (longest first: memory peaks show up early)."""
    lengths = np.fromiter((len(texts[r]) for r in rows), np.int64, len(rows))
    return rows[np.argsort(-lengths, kind="stable")]


class Batcher:
    """Yields :class:`TokenBatch` es for given rows of ``texts``, tokenised ahead of use."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        pad_id: int,
        device: torch.device,
        threads: int = 4,
        prefetch: int = 8,
    ) -> None:
        self.tokenizer, self.pad_id, self.device = tokenizer, pad_id, device
        self.threads, self.prefetch = max(1, threads), max(1, prefetch)

    def _make(self, texts: list[str], rows: np.ndarray) -> TokenBatch:
        encodings = self.tokenizer.encode_batch([texts[r] for r in rows])
        ids, lengths = pad_batch(encodings, self.pad_id)
        # No pinned staging: a batch of ids is ~100 KB, and cudaHostAlloc per batch costs
        # more than the pageable copy it would speed up.
        return TokenBatch(torch.from_numpy(ids), torch.from_numpy(lengths), rows)

    def batches(self, texts: list[str], rows: np.ndarray, batch_size: int) -> Iterator[TokenBatch]:
        """Batches of ``rows`` (already ordered) of at most ``batch_size`` texts each."""
        chunks = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
        if len(chunks) <= 1 or self.threads == 1:
            for chunk in chunks:
                yield self._make(texts, chunk)
            return
        with ThreadPoolExecutor(self.threads, thread_name_prefix="lsr-tok") as pool:
            pending: deque[Future[TokenBatch]] = deque()
            it = iter(chunks)
            for chunk in it:
                pending.append(pool.submit(self._make, texts, chunk))
                if len(pending) >= self.prefetch:
                    break
            while pending:
                batch = pending.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(pool.submit(self._make, texts, nxt))
                yield batch
