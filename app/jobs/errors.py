"""Typed errors of the batch jobs, each with a message a user can act on."""

from __future__ import annotations


class CorpusError(ValueError):
    """The corpus or dataset given is malformed, of an unknown kind, or does not exist."""


class DatasetUnavailableError(RuntimeError):
    """A dataset must be downloaded (or a package installed) and that is not possible here."""


class JobStateError(RuntimeError):
    """An output folder holds a job started with other settings; resuming it would mix them."""
