"""Token-budget batching: texts grouped by token length so each batch holds about a budget of
padded tokens, tokenised ahead of use in a background thread.

Why a token budget: a batch's cost is a fixed part (kernel launches, one host sync) plus a
part that grows with its padded tokens (rows x longest row), so a good batch is one with
enough tokens to hide the fixed part; a count of texts says little (128 docstrings hold 20x
the tokens of 128 package descriptions). Why sort by tokens: sorted by characters, the
shared docstring texts waste 72-100% of their padded tokens (code has few characters a
token, prose many); sorted by tokens, 1-5%.

The plan is a pure function of the texts and the :class:`BatchPolicy` (texts in decreasing
character length, cut into windows of a fixed schedule, each window with the previous
window's unfilled last batch sorted by token length and cut greedily), so the same list of
texts gives the same batches, and bit-identical vectors, in any process or machine with the
same settings. The window only bounds how far ahead the tokenizer must run before the first
batch can start.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from encoders.errors import EncoderError, ModelNotFoundError

# Padded tokens per batch by default. GPU: 64Ki (H200, splade-tiny, 256 tokens: about the
# 512-docstring / 1,024-package batches that were the best fixed sizes, and well past where a
# batch's launch cost stops mattering); `benchmarks/bench_encoder_batching.py` measures it
# against fixed sizes. CPU: 8Ki (32 texts of 256 tokens, the former CPU batch).
GPU_TOKEN_BUDGET = 65536
CPU_TOKEN_BUDGET = 8192
# At most this many texts a batch: the (texts x vocabulary) float32 output stays <= 0.5 GB.
GPU_MAX_TEXTS = 4096
CPU_MAX_TEXTS = 512


@dataclass(frozen=True)
class BatchPolicy:
    """How texts are grouped into batches.

    ``token_budget``: padded tokens (texts x longest text) a batch may hold; a text longer
    than the budget goes alone. ``max_texts``: texts a batch may hold. ``batch_size``: a
    fixed number of texts per batch instead (the budget is then ignored). Windows: the
    first ``first_window`` texts (by decreasing characters) are tokenised before the first
    batch; the next windows double up to ``max_window``.
    """

    token_budget: int = GPU_TOKEN_BUDGET
    max_texts: int = GPU_MAX_TEXTS
    batch_size: int | None = None
    first_window: int = 1024
    max_window: int = 16384

    def __post_init__(self) -> None:
        for name in ("token_budget", "max_texts", "first_window", "max_window"):
            if int(getattr(self, name)) < 1:
                raise EncoderError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size is not None and self.batch_size < 1:
            raise EncoderError(f"batch_size must be >= 1, got {self.batch_size}")

    @classmethod
    def for_device(cls, device: torch.device | str) -> BatchPolicy:
        """The default policy of a device type (the budget does not depend on the GPU model,
        so results do not either)."""
        if torch.device(device).type == "cuda":
            return cls(GPU_TOKEN_BUDGET, GPU_MAX_TEXTS)
        return cls(CPU_TOKEN_BUDGET, CPU_MAX_TEXTS)


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


def token_ids(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    """Word-piece ids of each text (the no-offsets fast path when the tokenizer has one)."""
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    return [enc.ids for enc in encode(texts)]


def pad_ids(id_lists: Sequence[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Id lists -> (B, L) int32 ids padded with ``pad_id`` and (B,) int32 lengths."""
    lengths = np.fromiter((len(ids) for ids in id_lists), np.int32, len(id_lists))
    ids = np.full((len(id_lists), int(lengths.max(initial=1))), pad_id, np.int32)
    for i, row in enumerate(id_lists):
        ids[i, : len(row)] = row
    return ids, lengths


def sort_by_length(texts: list[str], rows: np.ndarray) -> np.ndarray:
    """``rows`` ordered by decreasing text length in characters (stable)."""
    lengths = np.fromiter((len(texts[r]) for r in rows), np.int64, len(rows))
    return rows[np.argsort(-lengths, kind="stable")]


def window_bounds(n: int, policy: BatchPolicy) -> list[tuple[int, int]]:
    """``[start, stop)`` of each window over ``n`` texts: ``first_window``, doubling, capped."""
    bounds, start, size = [], 0, policy.first_window
    while start < n:
        bounds.append((start, min(n, start + size)))
        start += size
        size = min(policy.max_window, size * 2)
    return bounds


def cut_batches(lengths: np.ndarray, policy: BatchPolicy) -> list[tuple[int, bool]]:
    """Batch sizes over token ``lengths`` sorted in decreasing order, each with whether the
    batch is full (reached its budget or size, rather than the end of ``lengths``)."""
    sizes, start, n = [], 0, len(lengths)
    while start < n:
        if policy.batch_size is not None:
            want = policy.batch_size
        else:  # the first text is the longest: it sets the padded width
            want = min(policy.max_texts, max(1, policy.token_budget // int(lengths[start])))
        take = min(want, n - start)
        sizes.append((take, take == want))
        start += take
    return sizes


def plan_batches(
    order: np.ndarray,
    policy: BatchPolicy,
    tokenize: Callable[[np.ndarray], list[list[int]]],
) -> Iterator[tuple[np.ndarray, list[list[int]]]]:
    """Batches of ``order`` (rows by decreasing characters) as (rows, id lists).

    ``tokenize(rows)`` gives the ids of a window's rows; it is called once per window, in
    order. Each window joins the previous window's unfilled last batch, is sorted by token
    length (stable, so ties keep their order) and cut by :func:`cut_batches`.
    """
    carry_rows, carry_ids = np.zeros(0, np.int64), []
    bounds = window_bounds(len(order), policy)
    for w, (start, stop) in enumerate(bounds):
        rows = np.concatenate([carry_rows, order[start:stop]])
        ids = carry_ids + tokenize(order[start:stop])
        lengths = np.fromiter((len(x) for x in ids), np.int64, len(ids))
        perm = np.argsort(-lengths, kind="stable")
        sizes = cut_batches(lengths[perm], policy)
        carry_rows, carry_ids = np.zeros(0, np.int64), []
        offset = 0
        for b, (size, full) in enumerate(sizes):
            chosen = perm[offset : offset + size]
            offset += size
            if b == len(sizes) - 1 and not full and w < len(bounds) - 1:
                carry_rows, carry_ids = rows[chosen], [ids[i] for i in chosen]
                break
            yield rows[chosen], [ids[i] for i in chosen]


class Batcher:
    """Yields :class:`TokenBatch` es for rows of ``texts`` by a :class:`BatchPolicy`.

    Above one window, a background thread plans and pads batches ahead of use and
    ``threads`` threads tokenise windows ahead of it (the fast tokenizer spreads each call
    over all cores and releases the GIL), so the device never waits for the tokenizer
    except for the first window. ``prefetch`` batches wait ready at most.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        pad_id: int,
        threads: int = 1,
        prefetch: int = 4,
    ) -> None:
        self.tokenizer, self.pad_id = tokenizer, pad_id
        self.threads, self.prefetch = max(1, threads), max(1, prefetch)

    def _batch(self, rows: np.ndarray, id_lists: list[list[int]]) -> TokenBatch:
        ids, lengths = pad_ids(id_lists, self.pad_id)
        # No pinned staging: a batch of ids is ~100 KB-1 MB, and cudaHostAlloc per batch
        # costs more than the pageable copy it would speed up.
        return TokenBatch(torch.from_numpy(ids), torch.from_numpy(lengths), rows)

    def batches(
        self, texts: list[str], order: np.ndarray, policy: BatchPolicy
    ) -> Iterator[TokenBatch]:
        """Batches of ``order`` (rows of ``texts`` by decreasing characters)."""
        if len(order) <= policy.first_window:  # one window: no thread (single queries)
            for rows, ids in plan_batches(order, policy, self._tokenizer_for(texts)):
                yield self._batch(rows, ids)
            return
        yield from self._threaded(texts, order, policy)

    def _tokenizer_for(self, texts: list[str]) -> Callable[[np.ndarray], list[list[int]]]:
        return lambda rows: token_ids(self.tokenizer, [texts[r] for r in rows])

    def _threaded(
        self, texts: list[str], order: np.ndarray, policy: BatchPolicy
    ) -> Iterator[TokenBatch]:
        ready: queue.Queue[TokenBatch | BaseException | None] = queue.Queue(self.prefetch)
        stop = threading.Event()
        tokenize = self._tokenizer_for(texts)

        def put(item: TokenBatch | BaseException | None) -> None:
            while not stop.is_set():
                try:
                    ready.put(item, timeout=0.05)
                    return
                except queue.Full:
                    continue

        def produce() -> None:
            try:
                with ThreadPoolExecutor(self.threads, thread_name_prefix="lsr-tok") as pool:
                    windows = [order[a:b] for a, b in window_bounds(len(order), policy)]
                    ahead: list[Future[list[list[int]]]] = []

                    def next_window(rows: np.ndarray) -> list[list[int]]:
                        # plan_batches asks for the windows in order: tokenise them ahead.
                        while len(ahead) < self.threads + 1 and windows:
                            ahead.append(pool.submit(tokenize, windows.pop(0)))
                        ids = ahead.pop(0).result()
                        if len(ids) != len(rows):
                            raise RuntimeError("batcher windows out of step with the plan")
                        return ids

                    for rows, ids in plan_batches(order, policy, next_window):
                        if stop.is_set():
                            return
                        put(self._batch(rows, ids))
                put(None)
            except BaseException as exc:  # handed to the consumer and re-raised there
                put(exc)

        producer = threading.Thread(target=produce, name="lsr-batcher", daemon=True)
        producer.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            producer.join()
