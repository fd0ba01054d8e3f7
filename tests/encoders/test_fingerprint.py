"""Model fingerprints: what changes them (configs, weights, sub-models), what does not
(reports, the directory's place), and the per-file digest cache."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from encoders import EncoderConfig, ModelNotFoundError, model_fingerprint
from encoders.fingerprint import DIGEST_CACHE, fingerprint_files, model_files

WEIGHTS = "model.safetensors"


@pytest.fixture(autouse=True)
def digest_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The digest cache lives under ``$LSR_MODELS_DIR``: a fresh one per test."""
    models = tmp_path / "models-cache"
    monkeypatch.setenv("LSR_MODELS_DIR", str(models))
    return models / DIGEST_CACHE


def fake_model(path: Path, seed: int = 0) -> Path:
    """A model directory as the loaders see it (never loaded here): settings, a Hugging Face
    config and tokenizer, 64 KiB of seeded "weights", and a model card and report."""
    path.mkdir(parents=True)
    EncoderConfig(type="splade", max_length=128).save(path)
    (path / "config.json").write_text('{"model_type": "bert"}\n')
    (path / "tokenizer.json").write_text('{"model": {"vocab": {"a": 0}}}\n')
    (path / "tokenizer_config.json").write_text("{}\n")
    (path / WEIGHTS).write_bytes(np.random.default_rng(seed).bytes(1 << 16))
    (path / "README.md").write_text("# a model card\n")
    (path / "eval.json").write_text('{"nDCG@10": 0.5}\n')
    return path


def set_setting(model: Path, **changes: object) -> None:
    config = json.loads((model / "lsr_encoder.json").read_text())
    config.update(changes)
    (model / "lsr_encoder.json").write_text(json.dumps(config))


def test_same_files_same_fingerprint_wherever_they_are(tmp_path: Path) -> None:
    first = model_fingerprint(fake_model(tmp_path / "a"))
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 16
    assert model_fingerprint(tmp_path / "a") == first  # stable
    assert model_fingerprint(fake_model(tmp_path / "b")) == first  # a copy elsewhere
    assert model_fingerprint(fake_model(tmp_path / "c", seed=1)) != first  # other weights


@pytest.mark.parametrize(
    "change",
    [
        lambda m: set_setting(m, max_length=256),  # a setting in lsr_encoder.json
        lambda m: set_setting(m, extra={"normalize": True}),
        lambda m: (m / "tokenizer_config.json").write_text('{"do_lower_case": false}'),
        lambda m: (m / "config.json").write_text('{"model_type": "distilbert"}'),
        lambda m: (m / "vocab.txt").write_text("[PAD]\n"),  # a file that matters, added
        lambda m: (m / WEIGHTS).unlink(),
    ],
    ids=["setting", "extra-setting", "tokenizer", "config", "new-vocab", "weights-gone"],
)
def test_what_decides_the_codes_changes_it(tmp_path: Path, change) -> None:
    model = fake_model(tmp_path / "m")
    before = model_fingerprint(model)
    change(model)
    assert model_fingerprint(model) != before


def test_reports_and_cards_do_not_change_it(tmp_path: Path) -> None:
    model = fake_model(tmp_path / "m")
    before = model_fingerprint(model)
    (model / "README.md").write_text("# rewritten card\n")
    (model / "eval.json").write_text('{"nDCG@10": 0.6}\n')
    (model / "train_log.json").write_text("[]\n")
    (model / "loss_curves.png").write_bytes(b"\x89PNG")
    assert model_fingerprint(model) == before


def test_query_side_settings_and_formatting_do_not_change_it(tmp_path: Path) -> None:
    """A query's width (extra.query_k), the query's token budget and the description change
    no stored document code; nor does rewriting the settings file with another layout."""
    model = fake_model(tmp_path / "m")
    set_setting(model, extra={"query_k": 128, "default_k": 64})
    before = model_fingerprint(model)
    set_setting(model, extra={"default_k": 64, "query_k": 1024}, description="wider queries")
    set_setting(model, query_max_length=64)
    config = json.loads((model / "lsr_encoder.json").read_text())
    (model / "lsr_encoder.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    assert model_fingerprint(model) == before
    set_setting(model, extra={"default_k": 32, "query_k": 1024})  # documents' k: a new model
    assert model_fingerprint(model) != before


def test_weights_rewritten_in_place_with_the_old_size_and_mtime(tmp_path: Path) -> None:
    """The digest cache is keyed by ctime too: a copy that keeps size and mtime (``cp -p``,
    ``rsync -t``) of different weights is read again."""
    model = fake_model(tmp_path / "m")
    before = model_fingerprint(model)
    weights = model / WEIGHTS
    stat = weights.stat()
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert weights.stat().st_size == stat.st_size
    assert weights.stat().st_mtime_ns == stat.st_mtime_ns
    assert model_fingerprint(model) != before


def test_unchanged_files_come_from_the_digest_cache(tmp_path: Path, digest_cache: Path) -> None:
    model = fake_model(tmp_path / "m")
    first = model_fingerprint(model)
    cache = json.loads(digest_cache.read_text())
    entry = cache[os.path.realpath(model / WEIGHTS)]
    entry["sha256"] = "0" * 64  # what the cache says is believed while the file is unchanged
    digest_cache.write_text(json.dumps(cache))
    assert model_fingerprint(model) != first
    shutil.copy(model / WEIGHTS, tmp_path / "w")
    shutil.copy(tmp_path / "w", model / WEIGHTS)  # same bytes, a new write: read again
    assert model_fingerprint(model) == first


def test_an_unwritable_cache_only_costs_reading_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fake_model(tmp_path / "m")
    expected = model_fingerprint(model)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("LSR_MODELS_DIR", str(blocker / "models"))
    assert model_fingerprint(model) == expected


def test_query_model_and_named_files_are_digested(tmp_path: Path) -> None:
    root = tmp_path / "two"
    fake_model(root / "doc")
    fake_model(root / "query", seed=1)
    (root / "idf-table.json").write_text('{"a": 1.0}')
    EncoderConfig(model="doc", query_model="query", idf_file="idf-table.json").save(root)
    labels = [label for label, _ in model_files(root)]
    assert labels == sorted(labels)
    assert {"lsr_encoder.json", "doc/model.safetensors", "query/model.safetensors"} <= set(labels)
    assert "idf-table.json" in labels and "doc/README.md" not in labels
    before = model_fingerprint(root)
    (root / "query" / WEIGHTS).write_bytes(b"other query weights")
    assert model_fingerprint(root) != before
    after = model_fingerprint(root)
    (root / "idf-table.json").write_text('{"a": 2.0}')
    assert model_fingerprint(root) != after


def test_csr_includes_its_dense_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dense = fake_model(tmp_path / "dense")
    monkeypatch.setenv("LSR_DENSE_MODEL_DIR", str(dense))
    csr = tmp_path / "csr"
    csr.mkdir()
    (csr / "sae.safetensors").write_bytes(b"sae weights")
    (csr / "sae_config.json").write_text('{"k": 8}')
    EncoderConfig(type="csr", extra={"normalize": False}).save(csr)
    labels = [label for label, _ in model_files(csr)]
    assert "sae.safetensors" in labels and "sae_config.json" in labels
    assert "dense:model.safetensors" in labels
    before = model_fingerprint(csr)
    (dense / WEIGHTS).write_bytes(b"another dense model")
    assert model_fingerprint(csr) != before


def test_no_download_when_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    with pytest.raises(ModelNotFoundError, match="offline=True"):
        model_fingerprint("someorg/not-here")
    with pytest.raises(ModelNotFoundError):
        model_fingerprint(tmp_path / "absent")


def test_labels_bind_to_their_contents(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("1")
    b.write_text("2")
    assert fingerprint_files([("x", a), ("y", b)]) != fingerprint_files([("x", b), ("y", a)])
