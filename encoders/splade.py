"""SPLADE: masked-LM logits -> log(1 + ReLU) -> max over tokens, one sparse row per text.

CPU and GPU share one path: texts sorted by length, tokenised ahead in background threads,
padded per batch, run through :class:`~encoders.mlm.SpladeMLM` (vocabulary-chunked head,
bf16 autocast on CUDA), pruned on the device, and only the non-zeros copied to the host in
one transfer per batch. Rows come back in input order.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from tokenizers import Tokenizer

from encoders.base import (
    SparseEncoder,
    csr_from_parts,
    empty_csr,
    take_rows,
    validate_texts,
)
from encoders.batching import (
    Batcher,
    BatchPolicy,
    TokenBatch,
    load_tokenizer,
    sort_by_length,
    truncating_copy,
)
from encoders.config import EncoderConfig
from encoders.errors import EncoderError
from encoders.mlm import SpladeMLM, pick_device, pick_dtype
from encoders.resources import cpu_lanes

logger = logging.getLogger(__name__)

# A batch's rows (text positions), then its per-row counts, columns and values.
SparseRows = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def prune_on_device(weights: torch.Tensor, top_k: int | None, threshold: float) -> torch.Tensor:
    """Zero weights ``<= threshold`` and keep at most ``top_k`` per row; (B, V) in place."""
    if threshold > 0:
        weights.masked_fill_(weights <= threshold, 0.0)
    if top_k is not None and top_k < weights.shape[1]:
        top = torch.topk(weights, top_k, dim=1)
        weights.zero_().scatter_(1, top.indices, top.values)
    return weights


def sparse_to_host(weights: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, V) device weights -> per-row counts, columns, values on the host, in one copy."""
    keep = weights > 0
    values = weights[keep]
    cols = keep.nonzero()[:, 1].to(torch.int32)
    counts = keep.sum(dim=1, dtype=torch.int32)
    packed = torch.cat([counts, cols, values.view(torch.int32)]).cpu().numpy()
    n_rows, nnz = weights.shape[0], values.numel()
    return packed[:n_rows], packed[n_rows : n_rows + nnz], packed[n_rows + nnz :].view(np.float32)


class SpladeEncoder(SparseEncoder):
    """SPLADE over a Hugging Face masked-LM; optional separate query model."""

    def __init__(
        self,
        doc_model: SpladeMLM,
        tokenizer: Tokenizer,
        config: EncoderConfig,
        query_model: SpladeMLM | None = None,
        batch_size: int | None = None,
        token_budget: int | None = None,
        tokenizer_threads: int | None = None,
        gpu_streams: int = 2,
        cpu_lanes: int = 1,
    ) -> None:
        self.config = config
        self.doc_model = doc_model
        self.query_model = query_model or doc_model
        self.device = doc_model.device
        self.gpu_streams = max(1, int(gpu_streams))
        # CPU: batches side by side, one torch thread each (encoders.resources.cpu_lanes).
        self.cpu_lanes = max(1, int(cpu_lanes))
        # Batches by a budget of padded tokens (encoders.batching); ``batch_size`` fixes the
        # number of texts a batch instead. Either way the batches are a function of the
        # texts and these settings only, so results do not depend on the caller's process.
        default = BatchPolicy.for_device(self.device)
        self.policy = replace(
            default, token_budget=token_budget or default.token_budget, batch_size=batch_size
        )
        # One tokenising thread: the fast tokenizer spreads each call over all cores; more
        # Python threads over its pool oversubscribe the cores and starve the kernel launches
        # (H100 sweep, 16 cores: package texts 121k vs 75k /s with 8 threads;
        # benchmarks/results/encoder_threads_h100.json).
        threads = tokenizer_threads or 1
        self._doc_tok = truncating_copy(tokenizer, config.max_length)
        self._query_tok = truncating_copy(tokenizer, config.query_max_length)
        self._doc_batcher = Batcher(self._doc_tok, 0, threads)
        self._query_batcher = Batcher(self._query_tok, 0, threads)
        self._names = [tokenizer.id_to_token(i) or f"[unused{i}]" for i in range(self.dim)]

    @property
    def batch_size(self) -> int | None:
        """The fixed texts per batch when one was set; None: batches by token budget."""
        return self.policy.batch_size

    @property
    def token_budget(self) -> int:
        """Padded tokens (texts x longest text) a batch holds at most, by default."""
        return self.policy.token_budget

    @property
    def dim(self) -> int:
        return self.doc_model.vocab_size

    @property
    def feature_names(self) -> list[str]:
        return self._names

    def encode_documents(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        show_progress: bool = False,
        token_budget: int | None = None,
    ) -> sp.csr_array:
        """(len(texts), dim) document vectors, truncated at ``config.max_length`` tokens.

        Hand over whole shards: the encoder sorts and batches them itself (by a budget of
        padded tokens; ``batch_size`` fixes texts per batch instead)."""
        policy = self._policy(batch_size, token_budget)
        return self._encode(
            texts, self.doc_model, self._doc_batcher, policy, show_progress, screen="each"
        )

    def encode_queries(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        show_progress: bool = False,
        token_budget: int | None = None,
    ) -> sp.csr_array:
        """(len(texts), dim) query vectors, truncated at ``config.query_max_length`` tokens."""
        policy = self._policy(batch_size, token_budget)
        return self._encode(
            texts, self.query_model, self._query_batcher, policy, show_progress, screen="batch"
        )

    def _policy(self, batch_size: int | None, token_budget: int | None) -> BatchPolicy:
        """This call's batching: the encoder's policy with the call's overrides."""
        if batch_size is None and token_budget is None:
            return self.policy
        return replace(
            self.policy,
            batch_size=batch_size,
            token_budget=token_budget or self.policy.token_budget,
        )

    def _run_batch(
        self, model: SpladeMLM, batch: TokenBatch, progress: Any, screen: str | None = None
    ) -> SparseRows:
        """One tokenised batch -> its non-zeros on the host. ``screen`` (CPU float32 models):
        "batch" screens the batch's texts together (short queries), "each" text by text
        (documents); the weights are the float32 head's either way."""
        uniform = bool(batch.lengths.min() == batch.lengths.max())
        ids = batch.input_ids.to(self.device, non_blocking=True)
        lengths = None if uniform else batch.lengths.to(self.device, non_blocking=True)
        if screen and model.can_screen:
            result = model.screened_sparse(
                ids, lengths, self.config.top_k, self.config.threshold, each=screen == "each"
            )
        else:
            weights = model.weights(ids, lengths)
            prune_on_device(weights, self.config.top_k, self.config.threshold)
            result = sparse_to_host(weights)
        if progress is not None:
            progress.update(len(batch.rows))
        return (batch.rows, *result)

    def _run_streams(
        self, model: SpladeMLM, batches: Iterator[TokenBatch], progress: Any
    ) -> list[SparseRows]:
        """Batches over ``gpu_streams`` threads, each with its own CUDA stream.

        Copying a batch's non-zeros to the host waits for its kernels; with two streams
        the other thread's batch keeps the GPU busy meanwhile (and during kernel launches).
        """
        lock = threading.Lock()
        numbered = enumerate(batches)
        results: dict[int, SparseRows] = {}
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                # A new thread starts on cuda:0: make this encoder's device current (Triton
                # launches on the current device), then give the thread its own stream.
                with torch.cuda.device(self.device):
                    stream = torch.cuda.Stream(device=self.device)
                    with torch.cuda.stream(stream), torch.inference_mode():
                        self._drain(model, numbered, lock, results, errors, progress)
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)

        threads = [
            threading.Thread(target=worker, name=f"lsr-gpu-{i}") for i in range(self.gpu_streams)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return [results[i] for i in range(len(results))]

    def _run_lanes(
        self, model: SpladeMLM, batches: Iterator[TokenBatch], progress: Any, screen: str | None
    ) -> list[SparseRows]:
        """Batches over ``cpu_lanes`` threads (torch ops release the GIL), each op on one
        torch thread, so every batch's sums are the same whatever the number of lanes."""

        def run(batch: TokenBatch) -> SparseRows:
            with torch.inference_mode():  # thread-local: set in the lane's own thread
                return self._run_batch(model, batch, progress, screen)

        parts: list[SparseRows] = []
        with ThreadPoolExecutor(self.cpu_lanes, thread_name_prefix="lsr-cpu") as pool:
            pending: deque[Future[SparseRows]] = deque()
            for batch in batches:
                pending.append(pool.submit(run, batch))
                if len(pending) >= 2 * self.cpu_lanes:  # bounded: the batcher stays ahead
                    parts.append(pending.popleft().result())
            parts.extend(future.result() for future in pending)
        return parts

    def _drain(
        self,
        model: SpladeMLM,
        numbered: Iterator[tuple[int, TokenBatch]],
        lock: threading.Lock,
        results: dict[int, SparseRows],
        errors: list[BaseException],
        progress: Any,
    ) -> None:
        """One stream's loop: take the next batch (under ``lock``) and run it, until none
        are left or another stream failed."""
        while not errors:
            with lock:
                item = next(numbered, None)
            if item is None:
                return
            results[item[0]] = self._run_batch(model, item[1], progress)

    def _encode(
        self,
        texts: Sequence[str],
        model: SpladeMLM,
        batcher: Batcher,
        policy: BatchPolicy,
        show_progress: bool,
        screen: str | None = None,
    ) -> sp.csr_array:
        texts = validate_texts(texts)
        # Whitespace-only texts have no terms: they get an empty row, not [CLS]/[SEP] weights.
        rows = np.fromiter((i for i, t in enumerate(texts) if t.strip()), np.int64)
        if rows.size == 0:
            return empty_csr(len(texts), self.dim)
        order = sort_by_length(texts, rows)
        progress = None
        if show_progress:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(order), unit="text", desc="encoding")
        batches = batcher.batches(texts, order, policy)
        try:
            if self.device.type == "cuda" and self.gpu_streams > 1:
                parts = self._run_streams(model, batches, progress)
            elif self.device.type == "cpu" and self.cpu_lanes > 1:
                parts = self._run_lanes(model, batches, progress, screen)
            else:
                with on_device(self.device), torch.inference_mode():
                    parts = [self._run_batch(model, b, progress, screen) for b in batches]
        finally:
            batches.close()  # stops the batcher's thread when a batch failed
            if progress is not None:
                progress.close()
        counts = np.concatenate([p[1] for p in parts] + [np.zeros(1, np.int32)])
        sorted_matrix = csr_from_parts(
            counts,
            np.concatenate([p[2] for p in parts]),
            np.concatenate([p[3] for p in parts]),
            self.dim,
        )
        # Row j of sorted_matrix is the j-th text batched; the extra last row is empty.
        batched = np.concatenate([p[0] for p in parts])
        source = np.full(len(texts), len(batched), np.int64)
        source[batched] = np.arange(len(batched))
        return take_rows(sorted_matrix, source)


def on_device(device: torch.device) -> contextlib.AbstractContextManager:
    """Make ``device`` current for the block (CUDA), so kernels that launch on the current
    device (Triton's) run where the tensors are; a no-op on the CPU."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def pick_body_dtype(name: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The transformer body's dtype; "tf32" is float32 with TF32 matmuls on CUDA.

    "tf32" flips torch's process-wide ``torch.backends.cuda.matmul.allow_tf32`` on.
    """
    if name == "tf32":
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
        return torch.float32
    return pick_dtype(name or "float32", device)


def build_splade(
    model_dir: Path, config: EncoderConfig, options: dict[str, Any]
) -> tuple[SpladeMLM, SpladeMLM | None, Tokenizer, EncoderConfig, dict[str, Any]]:
    """Load the parts of a SPLADE-like model directory, applying load-time overrides."""
    options = dict(options)
    device = pick_device(options.pop("device", "auto"))
    model_kwargs = {
        "head_dtype": pick_dtype(options.pop("dtype", None), device),
        "body_dtype": pick_body_dtype(options.pop("body_dtype", None), device),
        "precision": options.pop("head_precision", "fp16"),
        "fused": options.pop("fused", None),
        "head_autotune": bool(options.pop("head_autotune", False)),
    }
    overrides = {
        k: options.pop(k)
        for k in ("max_length", "query_max_length", "top_k", "threshold")
        if k in options
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    config = replace(config, **overrides)
    num_threads = options.pop("num_threads", None)  # CPU lanes; the GPU path ignores it
    if device.type == "cpu":
        options["cpu_lanes"] = cpu_lanes(num_threads)  # the CPUs this process was given
    doc_dir = (model_dir / config.model).resolve()
    doc_model = SpladeMLM.from_pretrained(doc_dir, device, **model_kwargs)
    query_model = None
    if config.query_model:
        query_model = SpladeMLM.from_pretrained(
            (model_dir / config.query_model).resolve(), device, **model_kwargs
        )
    tok_dir = doc_dir if (doc_dir / "tokenizer.json").is_file() else model_dir
    return doc_model, query_model, load_tokenizer(tok_dir), config, options


def runtime_options(rest: dict[str, Any]) -> dict[str, Any]:
    """The encoder's own keyword options; anything else left over is a user error."""
    names = ("batch_size", "token_budget", "tokenizer_threads", "gpu_streams", "cpu_lanes")
    picked = {k: rest.pop(k) for k in names if rest.get(k) is not None}
    rest = {k: v for k, v in rest.items() if v is not None}
    if rest:
        raise EncoderError(f"unknown encoder options {sorted(rest)}")
    return picked


def load_splade(model_dir: Path, config: dict[str, Any], **options: Any) -> SpladeEncoder:
    """Loader for ``type: splade`` (see :data:`encoders.registry.ENCODER_TYPES`)."""
    doc_model, query_model, tokenizer, cfg, rest = build_splade(
        model_dir, EncoderConfig.from_dict(config), options
    )
    return SpladeEncoder(
        doc_model,
        tokenizer,
        cfg,
        query_model=query_model,
        **runtime_options(rest),
    )
