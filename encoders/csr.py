"""CSR encoder: a frozen dense embedder + a TopK sparse autoencoder, text -> ``csr_array``.

A model directory holds ``lsr_encoder.json`` (``type: "csr"``; CSR settings under ``extra``),
``sae.safetensors`` + ``sae_config.json`` (the autoencoder) and a ``README.md`` model card.
The dense embedder (all-MiniLM-L6-v2) is found as :mod:`encoders.csr_embedder` says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
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
from encoders.csr_sae import SAEConfig, TopKSAE
from encoders.errors import EncoderError
from encoders.resources import cpu_lanes


@dataclass
class CSRSettings:
    """CSR-specific settings, stored under ``extra`` in ``lsr_encoder.json``.

    ``default_k``: active latents per document when the caller gives no ``k`` (at most the
    trained ``k``);
    ``query_k``: the same for queries (None -> ``default_k``). It may exceed the trained
    ``k``, up to ``latent_dim``: a query's code is then the top ``query_k`` of its latent
    activations (all positive ones at ``latent_dim``), and its inner product with a
    document's ``default_k`` code weighs every latent the document uses, not only those
    the query's own short code would keep. The index stays as small (documents keep
    ``default_k``); a search walks more lists. The shipped general model serves queries at
    1,024 (chosen on SciFact train queries; the model card has the table);
    ``normalize``: each code scaled to unit length, so that the inner product the index
    computes is the cosine of the two codes. A document whose code is larger overall (more
    mass in its top ``k``, not closer to the query) then no longer outranks for that alone;
    with the shipped general model it lifts nDCG@10 at k = 64 from 89% to 91% of dense on
    average, 83% to 86% at worst (the model card). Off for model directories that do not say
    so, which keep the plain inner product they were measured with.
    """

    dense_model: str = DEFAULT_DENSE_MODEL
    default_k: int = 64
    query_k: int | None = None
    normalize: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CSRSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def save_csr_model(
    model_dir: str | Path,
    sae: TopKSAE,
    settings: CSRSettings,
    *,
    max_length: int = 256,
    description: str = "",
) -> Path:
    """Write a self-describing CSR model directory (config + fp16 SAE weights)."""
    model_dir = Path(model_dir)
    sae.save(model_dir)
    config = EncoderConfig(
        type="csr",
        max_length=max_length,
        query_max_length=max_length,
        description=description,
        extra={**asdict(settings), "sae": asdict(sae.config)},
    )
    config.save(model_dir)
    return model_dir


class CSREncoder(SparseEncoder):
    """Text -> ``k``-sparse codes over ``dim`` learned latents (``scipy.sparse.csr_array``).

    Queries and documents share the embedder and the autoencoder; only ``k`` may differ.
    Empty or whitespace-only texts give empty rows; ``None`` / non-strings raise
    ``ValueError``; texts longer than ``max_length`` tokens are truncated.
    """

    def __init__(
        self,
        sae: TopKSAE,
        settings: CSRSettings,
        *,
        embedder: DenseEmbedder | None = None,
        device: str | torch.device = "auto",
        max_length: int = 256,
        dense_model_dir: str | Path | None = None,
        batch_size: int | None = None,
        token_budget: int | None = None,
        lanes: int = 1,
    ) -> None:
        self.settings = settings
        self.device = resolve_device(device)
        self.sae = sae.to(self.device).eval()
        self.default_k = self.sae.check_k(settings.default_k)
        self.query_k = self.sae.check_k(settings.query_k or settings.default_k, wide=True)
        # The dense model, loaded on first use (so codes from embeddings need no transformer).
        self._dense = LazyEmbedder(
            embedder,
            model_dir=dense_model_dir,
            device=self.device,
            max_length=max_length,
            batch_size=batch_size,
            token_budget=token_budget,
            lanes=lanes,
        )

    @property
    def embedder(self) -> DenseEmbedder:
        """The dense model, loaded on first use (so codes from embeddings need no transformer)."""
        return self._dense.embedder

    @property
    def dim(self) -> int:
        return self.sae.config.latent_dim

    @property
    def max_k(self) -> int:
        """The largest ``k`` the autoencoder was trained for."""
        return self.sae.config.k

    @property
    def feature_names(self) -> list[str]:
        return [f"latent_{i}" for i in range(self.dim)]

    @torch.inference_mode()
    def sparsify(
        self, embeddings: np.ndarray, k: int | None = None, *, wide: bool = False
    ) -> sp.csr_array:
        """Embeddings ``(n, input_dim)`` -> ``(n, dim)`` codes with at most ``k`` non-zeros
        (``k`` up to ``latent_dim`` with ``wide``, as queries may be; see CSRSettings)."""
        k = self.sae.check_k(self.default_k if k is None else k, wide=wide)
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.sae.config.input_dim:
            raise EncoderError(
                f"embeddings must be (n, {self.sae.config.input_dim}), got {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            return empty_csr(0, self.dim)
        values, indices = self.sae.encode(torch.from_numpy(x).to(self.device), k, wide=wide)
        if self.settings.normalize:
            values = torch.nn.functional.normalize(values, dim=1)
        values, indices = values.cpu().numpy(), indices.cpu().numpy()
        # Columns ascending within a row (CSR convention); ReLU zeros dropped.
        order = np.argsort(indices, axis=1)
        indices = np.take_along_axis(indices, order, 1)
        values = np.take_along_axis(values, order, 1)
        keep = values > 0
        return csr_from_parts(keep.sum(1), indices[keep], values[keep], self.dim)

    def _encode(
        self,
        texts: Sequence[str],
        k: int | None,
        embeddings: np.ndarray | None = None,
        *,
        wide: bool = False,
    ) -> sp.csr_array:
        texts = validate_texts(texts)
        if embeddings is not None and len(embeddings) != len(texts):
            raise EncoderError(f"{len(embeddings)} embeddings for {len(texts)} texts")
        if not texts:
            return empty_csr(0, self.dim)
        k = self.sae.check_k(k, wide=wide) if k is not None else None
        rows = np.array([i for i, t in enumerate(texts) if t.strip()], dtype=np.int64)
        if len(rows) == 0:
            return empty_csr(len(texts), self.dim)
        if embeddings is None:
            embedded = self.embedder.embed([texts[i] for i in rows])
        else:
            embedded = np.asarray(embeddings)[rows]
        codes = self.sparsify(embedded, k, wide=wide)
        if len(rows) == len(texts):
            return codes
        # Scatter the non-empty rows back among empty ones.
        counts = np.zeros(len(texts), np.int64)
        counts[rows] = np.diff(codes.indptr)
        return csr_from_parts(counts, codes.indices, codes.data, self.dim)

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        k: int | None = None,
        embeddings: np.ndarray | None = None,
        **_: object,
    ) -> sp.csr_array:
        """Documents -> codes with at most ``k`` (default ``default_k``) non-zeros each.
        ``embeddings``: the texts' dense embeddings ``(len(texts), input_dim)`` when already
        made (an evaluation's cache), so that no text goes through the dense model again."""
        return self._encode(texts, self.default_k if k is None else k, embeddings)

    def encode_queries(
        self, texts: Sequence[str], *, k: int | None = None, **_: object
    ) -> sp.csr_array:
        """Queries -> codes with at most ``k`` (default ``query_k``; up to ``latent_dim``)
        non-zeros each."""
        return self._encode(texts, self.query_k if k is None else k, wide=True)


def load_csr(
    model_dir: str | Path, config: dict[str, Any] | None = None, **options: Any
) -> CSREncoder:
    """Load a CSR model directory (the ``csr`` loader of :mod:`encoders.registry`).

    ``options``: ``device`` ("auto"), ``k`` (default k for both sides), ``query_k``,
    ``normalize`` (codes scaled to unit length; default: the directory's setting),
    ``max_length``, ``dense_model_dir`` (where all-MiniLM-L6-v2 lives), ``embedder``
    (a ready :class:`DenseEmbedder`), ``batch_size`` / ``token_budget`` (the embedder's
    batching), ``num_threads`` (torch threads on the CPU; default from the CPUs this process
    was given, :func:`encoders.resources.torch_threads`). Other loader options (e.g.
    ``dtype``) are ignored.
    """
    model_dir = Path(model_dir)
    cfg = EncoderConfig.from_dict(config) if config is not None else EncoderConfig.load(model_dir)
    if cfg.type != "csr":
        raise EncoderError(f"{model_dir} is a {cfg.type!r} model, not 'csr'")
    settings = CSRSettings.from_dict(cfg.extra)
    if options.get("k") is not None:
        settings.default_k = int(options["k"])
    if options.get("query_k") is not None:
        settings.query_k = int(options["query_k"])
    if options.get("normalize") is not None:
        settings.normalize = bool(options["normalize"])
    sae_cfg = SAEConfig.from_dict(cfg.extra["sae"]) if "sae" in cfg.extra else None
    sae = TopKSAE.load(model_dir, sae_cfg)
    max_length = options.get("max_length") or cfg.max_length
    device = resolve_device(options.get("device") or "auto")
    lanes = cpu_lanes(options.get("num_threads")) if device.type == "cpu" else 1
    return CSREncoder(
        sae,
        settings,
        embedder=options.get("embedder"),
        device=device,
        max_length=int(max_length),
        dense_model_dir=options.get("dense_model_dir"),
        batch_size=options.get("batch_size"),
        token_budget=options.get("token_budget"),
        lanes=lanes,
    )
