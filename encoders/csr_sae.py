"""The TopK sparse autoencoder of CSR ("Beyond Matryoshka", Wen et al. 2025).

``z = ReLU(TopK_k(W_enc (x - b_pre) + b_enc))`` and ``x_hat = W_dec^T z + b_pre``: a dense
embedding ``x`` (``input_dim``) becomes a non-negative code over ``latent_dim`` features
with at most ``k`` non-zeros. ``torch.topk`` returns values sorted, so the code at any
``k' <= k`` is a prefix of the code at ``k``: training losses at several ``k`` share one
top-k, and the encoder picks ``k`` at encode time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from encoders.errors import EncoderError

WEIGHTS_FILE = "sae.safetensors"
BRANCH = ("hidden_weight", "hidden_bias", "branch_weight")  # with ``encoder_hidden`` > 0


@dataclass
class SAEConfig:
    """Shape and sparsity of the autoencoder.

    ``k`` is the largest trained number of active latents (the encoder may use any
    ``1 <= k' <= k``); ``tied`` shares one matrix between encoder and decoder;
    ``encoder_hidden`` > 0 adds a one-hidden-layer branch (GELU) to the linear encoder's
    latent scores, so that which ``k`` latents a text gets need not be a linear choice
    (measured for the general model and not taken: ``csr-minilm``'s model card).
    """

    input_dim: int = 384
    latent_dim: int = 8192
    k: int = 128
    tied: bool = False
    encoder_hidden: int = 0

    def __post_init__(self) -> None:
        if self.input_dim < 1 or self.latent_dim < 1:
            raise EncoderError("input_dim and latent_dim must be >= 1")
        if not 1 <= self.k <= self.latent_dim:
            raise EncoderError(f"k must be in [1, latent_dim={self.latent_dim}], got {self.k}")
        if self.encoder_hidden < 0:
            raise EncoderError(f"encoder_hidden must be >= 0, got {self.encoder_hidden}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SAEConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class TopKSAE(nn.Module):
    """TopK sparse autoencoder with a pre-bias and unit-norm decoder rows.

    ``decoder_weight`` is ``(latent_dim, input_dim)``: row ``i`` is latent ``i``'s direction.
    """

    def __init__(self, config: SAEConfig) -> None:
        super().__init__()
        self.config = config
        n, d = config.latent_dim, config.input_dim
        self.pre_bias = nn.Parameter(torch.zeros(d))
        self.latent_bias = nn.Parameter(torch.zeros(n))
        atoms = F.normalize(torch.randn(n, d), dim=1)
        self.encoder_weight = nn.Parameter(atoms.clone())
        # Tied: the decoder is the encoder matrix; separate: initialised to it (OpenAI's SAE init).
        self.decoder_weight = self.encoder_weight if config.tied else nn.Parameter(atoms.clone())
        h = config.encoder_hidden
        if h > 0:
            # The branch's output starts at zero: a fresh model scores latents as the linear
            # encoder does, and the branch learns what that choice misses.
            self.hidden_weight = nn.Parameter(torch.randn(h, d) / d**0.5)
            self.hidden_bias = nn.Parameter(torch.zeros(h))
            self.branch_weight = nn.Parameter(torch.zeros(n, h))

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, input_dim)`` -> ``(B, latent_dim)`` latent scores before TopK."""
        centred = x - self.pre_bias
        pre = F.linear(centred, self.encoder_weight, self.latent_bias)
        if self.config.encoder_hidden > 0:
            hidden = F.gelu(F.linear(centred, self.hidden_weight, self.hidden_bias))
            pre = pre + F.linear(hidden, self.branch_weight)
        return pre

    @staticmethod
    def topk(pre: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Top ``k`` latents per row, sorted: ``(values >= 0, indices)``, each ``(B, k)``."""
        values, indices = pre.topk(k, dim=-1, sorted=True)
        return F.relu(values), indices

    def encode(
        self, x: torch.Tensor, k: int | None = None, *, wide: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse code of ``x`` at ``k`` (default: the trained ``k``; up to ``latent_dim``
        with ``wide``) as ``(values, indices)``."""
        k = self.check_k(k, wide=wide)
        return self.topk(self.pre_activations(x), k)

    def decode(
        self, values: torch.Tensor, indices: torch.Tensor, *, bias: bool = True
    ) -> torch.Tensor:
        """``(B, k)`` code -> ``(B, input_dim)`` reconstruction: a weighted sum of ``k``
        decoder rows per code (``embedding_bag``), so it costs ``B k d``, not ``B n d``, and the
        decoder's gradient touches only the rows used (what makes CPU training affordable)."""
        weight = self.decoder_weight
        out = F.embedding_bag(
            indices, weight, per_sample_weights=values.to(weight.dtype), mode="sum"
        )
        return out + self.pre_bias if bias else out

    def forward(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """Reconstruction of ``x`` through a ``k``-sparse code."""
        return self.decode(*self.encode(x, k))

    def check_k(self, k: int | None, *, wide: bool = False) -> int:
        """``k`` validated against the trained ``k`` (``None`` -> trained ``k``); with
        ``wide``, against ``latent_dim`` instead (a query's code may be wider than the
        documents' codes the autoencoder was trained to reconstruct with)."""
        if k is None:
            return self.config.k
        top, what = (self.config.latent_dim, "latent_dim") if wide else (self.config.k, "trained k")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= top:
            raise EncoderError(f"k must be an int in [1, {top}] (the {what}), got {k!r}")
        return k

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescale decoder rows to unit norm (keeps latent values comparable across features)."""
        self.decoder_weight.data = F.normalize(self.decoder_weight.data, dim=1)

    @torch.no_grad()
    def remove_parallel_grad(self) -> None:
        """Drop the gradient component along each decoder row, so steps do not fight the norm."""
        grad = self.decoder_weight.grad
        if grad is None or self.config.tied:
            return
        w = self.decoder_weight.data
        grad -= (grad * w).sum(1, keepdim=True) * w

    def save(self, model_dir: str | Path, *, dtype: torch.dtype = torch.float16) -> Path:
        """Write ``sae.safetensors`` (in ``dtype``) and ``sae_config.json`` into ``model_dir``."""
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        tensors = {
            "pre_bias": self.pre_bias,
            "latent_bias": self.latent_bias,
            "encoder_weight": self.encoder_weight,
        }
        if not self.config.tied:
            tensors["decoder_weight"] = self.decoder_weight
        for name in BRANCH if self.config.encoder_hidden > 0 else ():
            tensors[name] = getattr(self, name)
        path = model_dir / WEIGHTS_FILE
        save_file({k: v.detach().to("cpu", dtype).contiguous() for k, v in tensors.items()}, path)
        (model_dir / "sae_config.json").write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, model_dir: str | Path, config: SAEConfig | None = None) -> TopKSAE:
        """Read what :meth:`save` wrote; weights come back as float32."""
        model_dir = Path(model_dir)
        if config is None:
            cfg_file = model_dir / "sae_config.json"
            if not cfg_file.is_file():
                raise EncoderError(f"no sae_config.json in {model_dir}")
            config = SAEConfig.from_dict(json.loads(cfg_file.read_text()))
        path = model_dir / WEIGHTS_FILE
        if not path.is_file():
            raise EncoderError(f"no {WEIGHTS_FILE} in {model_dir}")
        tensors = {k: v.float() for k, v in load_file(path).items()}
        expected = (
            {"pre_bias", "latent_bias", "encoder_weight"}
            | (set() if config.tied else {"decoder_weight"})
            | (set(BRANCH) if config.encoder_hidden > 0 else set())
        )
        if set(tensors) != expected:
            raise EncoderError(f"{path} holds {sorted(tensors)}, expected {sorted(expected)}")
        model = cls(config)
        for name, value in tensors.items():
            want, got = tuple(getattr(model, name).shape), tuple(value.shape)
            if got != want:
                raise EncoderError(f"{path}: {name} is {got}, config says {want}")
        with torch.no_grad():
            for name, value in tensors.items():
                getattr(model, name).copy_(value)
        return model
