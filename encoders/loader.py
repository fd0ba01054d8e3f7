"""``load_encoder``: the one front door from a name, a directory or a Hugging Face id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from encoders.base import SparseEncoder
from encoders.config import CONFIG_FILE, read_config_dict
from encoders.errors import ModelNotFoundError
from encoders.hub import looks_like_hub_id, snapshot_dir
from encoders.registry import ENCODER_TYPES, MODELS, import_object, resolve_registered


def resolve_model_dir(name_or_path: str | Path, *, fetch: bool = True) -> Path:
    """A registered name, a local directory, or a Hugging Face id -> a local model directory.

    ``fetch=False``: never download (a registered model not pulled yet, or a Hugging Face id
    not in the local cache, raises :class:`ModelNotFoundError`)."""
    name = str(name_or_path)
    if not name.strip():
        raise ModelNotFoundError("empty model name")
    registered = resolve_registered(name, fetch=fetch)
    if registered is not None:
        return registered
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFoundError(f"{path} is a file; expected a model directory")
        if not ((path / CONFIG_FILE).is_file() or (path / "config.json").is_file()):
            raise ModelNotFoundError(
                f"{path} is not a model directory: it has neither {CONFIG_FILE} nor config.json"
            )
        return path
    if looks_like_hub_id(name):
        return snapshot_dir(name, download=fetch)
    raise ModelNotFoundError(
        f"{name!r} is not a registered model ({', '.join(sorted(MODELS))}), not an existing "
        "directory, and not a Hugging Face id (org/name)"
    )


def load_encoder(
    name_or_path: str | Path,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype | None = None,
    max_length: int | None = None,
    **options: Any,
) -> SparseEncoder:
    """Load an encoder. ``options``: ``query_max_length``, ``top_k``, ``threshold``,
    ``batch_size``, ``tokenizer_threads``, ``num_threads`` (CPU), and type-specific ones.

    ``device="auto"`` picks CUDA when present; ``dtype`` defaults to bf16 on CUDA, float32
    on the CPU. The directory's ``lsr_encoder.json`` ``type`` picks the loader; a plain
    masked-LM directory (no such file) is SPLADE.
    """
    model_dir = resolve_model_dir(name_or_path)
    config = read_config_dict(model_dir)
    ref = ENCODER_TYPES.get(str(config["type"]))
    if ref is None:
        raise ModelNotFoundError(
            f"{model_dir / CONFIG_FILE}: unknown encoder type {config['type']!r}; "
            f"known: {sorted(ENCODER_TYPES)}"
        )
    loader = import_object(ref)
    return loader(model_dir, config, device=device, dtype=dtype, max_length=max_length, **options)
