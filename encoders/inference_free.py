"""Inference-free SPLADE: documents through the model, queries by tokenizer + IDF table.

At query time no transformer runs: a query's vector holds, for each distinct word piece it
contains, that piece's weight from ``idf.json`` (``{token: weight}``, the layout OpenSearch's
``opensearch-neural-sparse-encoding-doc-*`` models ship). :func:`build_inference_free` makes
such a model directory from any SPLADE document model plus a corpus for the IDF table.
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from tokenizers import Tokenizer

from encoders.base import csr_from_parts, empty_csr, validate_texts
from encoders.batching import load_tokenizer
from encoders.config import CONFIG_FILE, EncoderConfig
from encoders.errors import EncoderError, ModelNotFoundError
from encoders.splade import SpladeEncoder, build_splade, runtime_options

logger = logging.getLogger(__name__)

IDF_FILE = "idf.json"
MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


def bag_of_tokens(
    tokenizer: Tokenizer, texts: list[str], dim: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct word pieces per text (no special tokens).

    Returns ``rows`` (nnz,) int64, ``cols`` (nnz,) int64 sorted by (row, col), ``counts`` (n,).
    """
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    lengths = np.fromiter((len(e.ids) for e in encodings), np.int64, len(encodings))
    ids = np.fromiter((i for e in encodings for i in e.ids), np.int64, int(lengths.sum()))
    rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    keep = (ids >= 0) & (ids < dim)
    keys = np.unique(rows[keep] * dim + ids[keep])
    rows, cols = keys // dim, keys % dim
    return rows, cols, np.bincount(rows, minlength=len(texts))


class InferenceFreeSpladeEncoder(SpladeEncoder):
    """SPLADE documents; queries weighted by a per-token IDF table (no model at query time)."""

    def __init__(self, *args: Any, idf: np.ndarray, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if idf.shape != (self.dim,):
            raise EncoderError(f"IDF table has shape {idf.shape}, expected ({self.dim},)")
        self.idf = idf.astype(np.float32)

    def encode_queries(
        self, texts: Sequence[str], batch_size: int | None = None, show_progress: bool = False
    ) -> sp.csr_array:
        """(len(texts), dim): each distinct word piece of a query weighted by its IDF."""
        texts = validate_texts(texts)
        if not texts:
            return empty_csr(0, self.dim)
        rows, cols, _ = bag_of_tokens(self._query_tok, texts, self.dim)
        values = self.idf[cols]
        keep = values > self.config.threshold
        rows, cols, values = rows[keep], cols[keep], values[keep]
        if self.config.top_k is not None:
            # Keep each row's top_k weights: sort by (row, -value), rank within the row.
            order = np.lexsort((-values, rows))
            rank = np.arange(len(order)) - np.searchsorted(rows[order], rows[order])
            chosen = np.sort(order[rank < self.config.top_k])
            rows, cols, values = rows[chosen], cols[chosen], values[chosen]
        counts = np.bincount(rows, minlength=len(texts))
        return csr_from_parts(counts, cols, values, self.dim)


def read_idf(path: Path, tokenizer: Tokenizer, dim: int) -> np.ndarray:
    """``{token: weight}`` JSON -> (dim,) float32; tokens missing from the table weigh 0."""
    try:
        table = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelNotFoundError(f"cannot read the IDF table {path}: {exc}") from exc
    if not isinstance(table, dict):
        raise ModelNotFoundError(f"{path} must map tokens to weights")
    idf = np.zeros(dim, np.float32)
    for token, weight in table.items():
        token_id = tokenizer.token_to_id(token)
        if token_id is not None and 0 <= token_id < dim:
            idf[token_id] = float(weight)
    return idf


def load_inference_free(
    model_dir: Path, config: dict[str, Any], **options: Any
) -> InferenceFreeSpladeEncoder:
    """Loader for ``type: splade-inference-free``."""
    doc_model, query_model, tokenizer, cfg, rest = build_splade(
        model_dir, EncoderConfig.from_dict(config), options
    )
    idf = read_idf(model_dir / (cfg.idf_file or IDF_FILE), tokenizer, doc_model.vocab_size)
    return InferenceFreeSpladeEncoder(
        doc_model,
        tokenizer,
        cfg,
        query_model=query_model,
        idf=idf,
        **runtime_options(rest),
    )


def corpus_idf(
    tokenizer: Tokenizer, texts: Iterable[str], dim: int, chunk: int = 8192
) -> np.ndarray:
    """BM25 IDF per word piece, ``log(1 + (N - df + 0.5) / (df + 0.5))``; (dim,) float32."""
    df = np.zeros(dim, np.int64)
    n_docs = 0
    buffer: list[str] = []

    def flush() -> None:
        nonlocal n_docs
        _, cols, _ = bag_of_tokens(tokenizer, buffer, dim)
        df[:] += np.bincount(cols, minlength=dim)
        n_docs += len(buffer)
        buffer.clear()

    for text in texts:
        buffer.append(text)
        if len(buffer) >= chunk:
            flush()
    if buffer:
        flush()
    if n_docs == 0:
        raise EncoderError("no texts given for the IDF table")
    return np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)


def build_inference_free(
    doc_model: str | Path, texts: Sequence[str], out_dir: str | Path, max_length: int | None = None
) -> Path:
    """Make an inference-free SPLADE model directory: the doc model's files + ``idf.json``."""
    from encoders.loader import resolve_model_dir

    source = resolve_model_dir(doc_model)
    texts = validate_texts(texts)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise EncoderError(f"{out} exists and is not empty; choose a new directory")
    out.mkdir(parents=True, exist_ok=True)
    base = EncoderConfig.load(source)
    model_src = (source / base.model).resolve()
    for name in MODEL_FILES:
        if (model_src / name).is_file():
            shutil.copy2(model_src / name, out / name)
    tokenizer = load_tokenizer(out)
    vocab = tokenizer.get_vocab_size()
    idf = corpus_idf(tokenizer, texts, vocab)
    table = {
        tokenizer.id_to_token(i): round(float(idf[i]), 6)
        for i in range(vocab)
        if tokenizer.id_to_token(i) is not None
    }
    (out / IDF_FILE).write_text(json.dumps(table))
    EncoderConfig(
        type="splade-inference-free",
        max_length=max_length or base.max_length,
        query_max_length=base.query_max_length,
        idf_file=IDF_FILE,
        description=f"inference-free SPLADE: documents by {doc_model}, queries by IDF over "
        f"{len(texts)} texts",
    ).save(out)
    logger.info("wrote %s (%s, %s)", out, IDF_FILE, CONFIG_FILE)
    return out


def read_corpus_texts(path: str | Path, limit: int | None = None) -> list[str]:
    """Texts from ``.txt[.gz]`` (one per line) or BEIR ``.jsonl[.gz]`` (title + text)."""
    path = Path(path)
    if not path.is_file():
        raise EncoderError(f"corpus file {path} not found")
    opener = gzip.open if path.suffix == ".gz" else open
    is_jsonl = ".jsonl" in path.suffixes
    texts: list[str] = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if limit is not None and len(texts) >= limit:
                break
            line = line.rstrip("\n")
            if is_jsonl:
                if not line.strip():
                    continue
                doc = json.loads(line)
                line = " ".join(x for x in (doc.get("title", ""), doc.get("text", "")) if x)
            texts.append(line)
    return texts
