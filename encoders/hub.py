"""Hugging Face ids -> a local snapshot directory (download when the network allows)."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from encoders.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def looks_like_hub_id(name: str) -> bool:
    """``org/name`` with no path separators beyond the one slash."""
    return bool(HF_ID.match(name)) and ".." not in name


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def snapshot_dir(repo_id: str, revision: str | None = None, *, download: bool = True) -> Path:
    """The local snapshot of ``repo_id``: from the hub cache, downloading when online and
    ``download``.

    Honours ``HF_HUB_OFFLINE`` and ``HF_HUB_CACHE`` as read at call time, so a cache laid
    out like the hub's (``models--org--name/snapshots/<rev>/``) works with no network.
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - transformers depends on it
        raise ModelNotFoundError("huggingface_hub is needed to load Hugging Face ids") from exc
    cache_dir = os.environ.get("HF_HUB_CACHE") or None
    allow = ["*.json", "*.safetensors", "*.txt", "*.model", "*.bin"]
    attempts = [True] if _offline() or not download else [False, True]
    last_exc: Exception | None = None
    for local_only in attempts:
        try:
            path = snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=local_only,
                allow_patterns=allow,
            )
            return Path(path)
        except Exception as exc:  # noqa: BLE001 - hub raises many types; we re-raise one
            last_exc = exc
            if not local_only:
                logger.warning("download of %s failed (%s); trying the local cache", repo_id, exc)
    where = cache_dir or "the default Hugging Face cache"
    raise ModelNotFoundError(
        f"Hugging Face model {repo_id!r} is not in {where} and could not be downloaded "
        f"(offline={_offline() or not download}): {last_exc}"
    ) from last_exc
