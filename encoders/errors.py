"""Typed errors of the encoders package; each message says what was looked for and what to do."""

from __future__ import annotations


class EncoderError(ValueError):
    """Base class: a model that cannot be found, fetched or loaded, or bad input."""


class ModelNotFoundError(EncoderError):
    """A name, directory or Hugging Face id that resolves to no usable model directory."""


class ModelFetchError(EncoderError):
    """Downloading a model failed (offline, registry down, bad checksum)."""


class ChecksumError(ModelFetchError):
    """A downloaded file's sha256 differs from the pinned value."""
