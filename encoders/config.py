"""The self-describing model directory: ``lsr_encoder.json`` next to the weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from encoders.errors import EncoderError

CONFIG_FILE = "lsr_encoder.json"
FORMAT_VERSION = 1
ENCODER_TYPES = ("splade", "splade-inference-free", "csr", "bm25", "dense")


@dataclass
class EncoderConfig:
    """What a model directory holds and how to encode with it.

    ``model`` / ``query_model`` are sub-directories (relative to the config file) holding
    Hugging Face masked-LM weights; ``query_model`` None means queries use ``model``.
    ``idf_file`` (inference-free SPLADE) maps word pieces to query weights. ``extra`` carries
    type-specific settings (the CSR encoder keeps its own there).
    """

    type: str = "splade"
    model: str = "."
    query_model: str | None = None
    max_length: int = 256
    query_max_length: int = 64
    top_k: int | None = None
    threshold: float = 0.0
    idf_file: str | None = None
    description: str = ""
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in ENCODER_TYPES:
            raise EncoderError(f"encoder type {self.type!r} is not one of {ENCODER_TYPES}")
        if self.max_length < 2 or self.query_max_length < 2:
            raise EncoderError(
                "max_length and query_max_length must be >= 2 (room for [CLS]/[SEP])"
            )
        if self.top_k is not None and self.top_k < 1:
            raise EncoderError(f"top_k must be >= 1 or None, got {self.top_k}")
        if self.threshold < 0:
            raise EncoderError(f"threshold must be >= 0, got {self.threshold}")

    def save(self, model_dir: str | Path) -> Path:
        """Write ``lsr_encoder.json`` into ``model_dir``; returns its path."""
        path = Path(model_dir) / CONFIG_FILE
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderConfig:
        known = {f.name for f in fields(cls)}
        extra = dict(data.get("extra", {}))
        # Unknown keys go to ``extra`` so a newer or type-specific config still loads.
        extra.update({k: v for k, v in data.items() if k not in known})
        return cls(**{k: v for k, v in data.items() if k in known and k != "extra"}, extra=extra)

    @classmethod
    def load(cls, model_dir: str | Path) -> EncoderConfig:
        """Read ``lsr_encoder.json``; a directory without one is a plain SPLADE (MLM) model."""
        path = Path(model_dir) / CONFIG_FILE
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise EncoderError(f"cannot read encoder config {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise EncoderError(f"encoder config {path} must hold a JSON object")
        return cls.from_dict(data)


def read_config_dict(model_dir: str | Path) -> dict[str, Any]:
    """The raw ``lsr_encoder.json`` as a dict (``{"type": "splade"}`` when absent)."""
    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        return {"type": "splade"}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EncoderError(f"cannot read encoder config {path}: {exc}") from exc
    if not isinstance(data, dict) or "type" not in data:
        raise EncoderError(f"encoder config {path} must be a JSON object with a 'type' key")
    return data
