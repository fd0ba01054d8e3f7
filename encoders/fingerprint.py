"""Model fingerprints: a stable digest of what decides an encoder's output for a name.

An index holds codes from one model. When the model behind a name changes (re-pulled,
overwritten by ``lsr models adapt --out SAME_DIR``, a shipped ``lsr_encoder.json`` with new
settings), codes of new texts no longer match the stored ones; the service pins each
field's fingerprint when a collection is created and refuses to encode with another.

Digested, by path relative to the model directory (a copied or moved model keeps its
fingerprint): ``lsr_encoder.json``; the Hugging Face config, tokenizer and weight files of
the directory and of the sub-directories its ``model`` / ``query_model`` name; files that
``lsr_encoder.json`` names (``idf_file``, ``stats_file``); for CSR, the dense model's
directory as the loader finds it. Not digested: model cards, evaluation reports, training
logs and plots (``README.md``, ``eval.json``, ``train_log.json``, ``*.png``), which are
rewritten without changing a code, and the encoders' own Python code. ``lsr_encoder.json`` is
digested as its settings (canonical JSON), less those that change no stored code: its
``description``, and the query side's ``query_max_length`` and ``extra.query_k`` (a query's
code may be re-chosen, as csr-minilm's width was, without mixing two models' document codes).

Each file's sha256 is cached in ``$LSR_MODELS_DIR/.file-digests.json`` under its real path,
keyed by size, ``mtime_ns``, ``ctime_ns``, inode and device: writing a file gives it a new
ctime, which no tool can set back, so a changed file is always read again and an unchanged
one never is (about 1 ms for a model instead of reading its weights).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from encoders.config import CONFIG_FILE, read_config_dict
from encoders.errors import EncoderError
from encoders.loader import resolve_model_dir
from encoders.registry import models_dir

logger = logging.getLogger(__name__)

FINGERPRINT_VERSION = "lsr-model-fingerprint-1"
# "sha256:" + the first 16 hex digits: 64 bits tell two models apart; the full digest
# would only make error messages longer.
PREFIX = "sha256:"
HEX_DIGITS = 16
DIGEST_CACHE = ".file-digests.json"
CONFIG_NAMES = frozenset(
    {
        CONFIG_FILE,
        "config.json",
        "tokenizer.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "idf.json",  # inference-free SPLADE's query weights
        "bm25_stats.json.gz",  # a fitted BM25's corpus statistics
    }
)
# Tokenizer / autoencoder configs (tokenizer_config.json, sae_config.json, ...).
CONFIG_SUFFIX = "_config.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".npy", ".npz", ".model")
# Settings of ``lsr_encoder.json`` that change no document's code (see the module docstring).
QUERY_ONLY_SETTINGS = ("description", "query_max_length")
QUERY_ONLY_EXTRA = ("query_k",)
_CHUNK = 1 << 20


def model_fingerprint(name_or_path: str | Path, *, fetch: bool = False) -> str:
    """``"sha256:<16 hex>"`` of the model a name, directory or Hugging Face id resolves to.

    ``fetch=False`` (the default) never downloads: a registered model not pulled yet or a
    Hugging Face id not in the local cache raises :class:`ModelNotFoundError`; an unreadable
    file, :class:`EncoderError`.
    """
    model_dir = resolve_model_dir(name_or_path, fetch=fetch)
    try:
        return fingerprint_files(model_files(model_dir))
    except OSError as exc:
        raise EncoderError(f"cannot read the model files of {model_dir}: {exc}") from exc


def model_fingerprint_or_none(name_or_path: str | Path, *, fetch: bool = False) -> str | None:
    """:func:`model_fingerprint`, or None when the model cannot be found or read here."""
    try:
        return model_fingerprint(name_or_path, fetch=fetch)
    except EncoderError:
        return None


def model_files(model_dir: Path) -> list[tuple[str, Path]]:
    """``(label, path)`` of every file that decides the encoder's output, sorted by label."""
    config = read_config_dict(model_dir)
    found: dict[str, Path] = dict(_model_dir_files(model_dir, ""))
    for key in ("model", "query_model"):
        sub = config.get(key)
        if not isinstance(sub, str) or not _is_inside(sub) or str(PurePosixPath(sub)) == ".":
            continue  # "." (the directory itself) or None
        if (model_dir / sub).is_dir():
            found.update(_model_dir_files(model_dir / sub, f"{PurePosixPath(sub)}/"))
    for value in _strings(config):
        if _is_inside(value) and (model_dir / value).is_file():
            found[str(PurePosixPath(value))] = model_dir / value
    if config.get("type") in ("csr", "dense"):  # the (frozen) dense model they run
        from encoders.csr_embedder import find_dense_model_dir

        found.update(_model_dir_files(find_dense_model_dir(), "dense:"))
    return sorted(found.items())


def fingerprint_files(files: list[tuple[str, Path]]) -> str:
    """The fingerprint of labelled files: a sha256 over each label and its content's sha256."""
    cache_path = models_dir() / DIGEST_CACHE
    cache = _read_cache(cache_path)
    changed = False
    digest = hashlib.sha256(FINGERPRINT_VERSION.encode() + b"\n")
    for label, path in files:
        if label == CONFIG_FILE:
            file_digest, hit = _settings_digest(path), True
        else:
            file_digest, hit = _file_digest(path, cache)
        changed |= not hit
        digest.update(f"{label}\t{file_digest}\n".encode())
    if changed:
        _write_cache(cache_path, cache)
    return PREFIX + digest.hexdigest()[:HEX_DIGITS]


def _model_dir_files(folder: Path, label: str) -> Iterator[tuple[str, Path]]:
    for path in sorted(folder.iterdir()):
        name = path.name
        wanted = name in CONFIG_NAMES or name.endswith(CONFIG_SUFFIX)
        if (wanted or name.endswith(WEIGHT_SUFFIXES)) and path.is_file():
            yield label + name, path


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value (a config's file names, among others)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _is_inside(relative: str) -> bool:
    """A relative path that stays inside the model directory."""
    parts = PurePosixPath(relative).parts
    return bool(relative) and not relative.startswith(("/", "~")) and ".." not in parts


def _settings_digest(path: Path) -> str:
    """The sha256 of a model's settings that decide its documents' codes: canonical JSON of
    ``lsr_encoder.json`` less :data:`QUERY_ONLY_SETTINGS` and :data:`QUERY_ONLY_EXTRA`."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise EncoderError(f"{path} is not valid JSON: {exc}") from exc
    if isinstance(config, dict):
        config = {k: v for k, v in config.items() if k not in QUERY_ONLY_SETTINGS}
        if isinstance(config.get("extra"), dict):
            extra = config["extra"]
            config["extra"] = {k: v for k, v in extra.items() if k not in QUERY_ONLY_EXTRA}
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _file_digest(path: Path, cache: dict[str, Any]) -> tuple[str, bool]:
    """The file's sha256 and whether the cache had it."""
    real = os.path.realpath(path)
    st = os.stat(real)
    key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
    entry = cache.get(real)
    if isinstance(entry, dict) and entry.get("key") == key:
        return str(entry["sha256"]), True
    sha = hashlib.sha256()
    with open(real, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            sha.update(chunk)
    cache[real] = {"key": key, "sha256": sha.hexdigest()}
    return sha.hexdigest(), False


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, cache: dict[str, Any]) -> None:
    """Best effort (a read-only cache only costs reading the files again): a temporary
    file renamed over the cache, so concurrent writers never leave half a file."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(cache, sort_keys=True))
        tmp.replace(path)
    except OSError as exc:
        logger.debug("file digest cache %s not written: %s", path, exc)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
