"""Lazy access to ``ir_datasets``: imported only when an id is used, with clear errors offline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from app.jobs.errors import CorpusError, DatasetUnavailableError

INSTALL_HINT = "pip install ir_datasets"


def load_ir_dataset(dataset_id: str) -> Any:
    """``ir_datasets.load(dataset_id)``; raises a typed error when the package or id is missing."""
    try:
        import ir_datasets
    except ImportError as exc:
        raise DatasetUnavailableError(
            f"{dataset_id!r} is not a local file or folder, so it was taken for an ir_datasets id, "
            f"but the ir_datasets package is not installed ({INSTALL_HINT}); or pass a local BEIR "
            "folder / JSONL / Parquet / .txt file"
        ) from exc
    try:
        return ir_datasets.load(dataset_id)
    except KeyError as exc:
        raise CorpusError(
            f"{dataset_id!r} is neither a local file/folder nor a known ir_datasets id "
            "(for example 'msmarco-passage/dev/small' or 'beir/scifact/test')"
        ) from exc


def iter_ir_dataset(dataset_id: str, part: str) -> Iterator[Any]:
    """Iterate ``docs``, ``queries`` or ``qrels`` of an ``ir_datasets`` id.

    The first use downloads the data; without the network this raises
    :class:`DatasetUnavailableError` saying so, instead of a bare connection error.
    """
    dataset = load_ir_dataset(dataset_id)
    if not getattr(dataset, f"has_{part}")():
        raise CorpusError(f"ir_datasets id {dataset_id!r} provides no {part}")
    try:
        yield from getattr(dataset, f"{part}_iter")()
    except (OSError, RuntimeError) as exc:
        # ir_datasets raises OSError (requests) or RuntimeError("All download sources failed").
        if isinstance(exc, RuntimeError) and "download" not in str(exc).lower():
            raise
        raise DatasetUnavailableError(
            f"ir_datasets {dataset_id!r} must be downloaded on first use and that needs the "
            f"network, which is not reachable here ({type(exc).__name__}). Download it on a "
            "machine with the network (it is cached under ~/.ir_datasets) or pass a local BEIR "
            "folder."
        ) from exc
