"""Fixtures for encoder tests: the locally pulled splade-tiny, never the network."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from encoders.errors import ModelNotFoundError
from encoders.registry import resolve_registered


@pytest.fixture(scope="session")
def splade_tiny_dir() -> Path:
    """The splade-tiny model directory (``lsr models pull splade-tiny`` puts it there)."""
    try:
        path = resolve_registered("splade-tiny", fetch=False)
    except ModelNotFoundError as exc:
        pytest.skip(f"splade-tiny not pulled ({exc})")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def splade_tiny(splade_tiny_dir: Path):
    """splade-tiny on the CPU in float32."""
    from encoders import load_encoder

    return load_encoder(str(splade_tiny_dir), device="cpu", dtype="float32")


def copy_model_files(src: Path, dst: Path, with_config: bool = False) -> Path:
    """Copy the Hugging Face files of a model directory (and optionally lsr_encoder.json)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy2(src / name, dst / name)
    if with_config:
        shutil.copy2(src / "lsr_encoder.json", dst / "lsr_encoder.json")
    return dst
