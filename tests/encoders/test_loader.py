"""load_encoder: registered names, plain MLM directories, hub-cache snapshots, clear failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from encoders import EncoderConfig, ModelNotFoundError, load_encoder, resolve_model_dir
from tests.encoders.conftest import copy_model_files

TEXTS = ["sparse retrieval on one box", "the weather is lovely today"]


def test_registered_name_resolves_to_pulled_dir(splade_tiny_dir, monkeypatch) -> None:
    monkeypatch.setenv("LSR_MODELS_DIR", str(splade_tiny_dir.parent))
    assert resolve_model_dir("splade-tiny") == splade_tiny_dir
    enc = load_encoder("splade-tiny", device="cpu")
    assert enc.dim == 30522 and enc.config.max_length == 256


def test_plain_mlm_directory_is_splade(splade_tiny, splade_tiny_dir, tmp_path) -> None:
    plain = copy_model_files(splade_tiny_dir, tmp_path / "plain")
    enc = load_encoder(str(plain), device="cpu", max_length=64)
    assert enc.config.type == "splade" and enc.config.max_length == 64
    np.testing.assert_allclose(
        enc.encode_documents(TEXTS).toarray(),
        splade_tiny.encode_documents(TEXTS).toarray(),
        atol=1e-5,
    )


def test_hub_snapshot_layout_offline(splade_tiny, splade_tiny_dir, tmp_path, monkeypatch) -> None:
    repo = tmp_path / "hub" / "models--someorg--splade-mini"
    rev = "0123456789abcdef0123456789abcdef01234567"
    copy_model_files(splade_tiny_dir, repo / "snapshots" / rev)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_dir("someorg/splade-mini") == repo / "snapshots" / rev
    enc = load_encoder("someorg/splade-mini", device="cpu")
    np.testing.assert_allclose(
        enc.encode_queries(TEXTS).toarray(), splade_tiny.encode_queries(TEXTS).toarray(), atol=1e-5
    )
    with pytest.raises(ModelNotFoundError, match="someorg/absent.*not in"):
        load_encoder("someorg/absent", device="cpu")


def test_separate_query_model(splade_tiny_dir, tmp_path) -> None:
    root = tmp_path / "two"
    copy_model_files(splade_tiny_dir, root / "doc")
    copy_model_files(splade_tiny_dir, root / "query")
    EncoderConfig(model="doc", query_model="query", query_max_length=8).save(root)
    enc = load_encoder(str(root), device="cpu")
    assert enc.query_model is not enc.doc_model
    long_query = " ".join(f"term{i}" for i in range(50))
    assert enc.encode_queries([long_query]).nnz < enc.encode_documents([long_query]).nnz


def test_unknown_name_says_what_was_looked_for(tmp_path) -> None:
    with pytest.raises(ModelNotFoundError, match="not a registered model.*splade-tiny"):
        load_encoder("no-such-model")
    with pytest.raises(ModelNotFoundError, match="neither lsr_encoder.json nor config.json"):
        load_encoder(str(tmp_path))
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        load_encoder(str(tmp_path / "file.bin"))


def test_broken_directories(tmp_path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelNotFoundError, match="no masked-LM weights loadable"):
        load_encoder(str(broken), device="cpu")
    typed = tmp_path / "typed"
    typed.mkdir()
    (typed / "lsr_encoder.json").write_text(json.dumps({"type": "word2vec"}))
    with pytest.raises(ModelNotFoundError, match="unknown encoder type 'word2vec'"):
        load_encoder(str(typed))
    (typed / "lsr_encoder.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="'type' key"):
        load_encoder(str(typed))


def test_config_round_trip(tmp_path: Path) -> None:
    cfg = EncoderConfig(type="splade", top_k=64, threshold=0.1, extra={"note": "x"})
    cfg.save(tmp_path)
    assert EncoderConfig.load(tmp_path) == cfg
    with pytest.raises(ValueError, match="top_k"):
        EncoderConfig(top_k=0)
    with pytest.raises(ValueError, match="encoder type"):
        EncoderConfig(type="tfidf")


def test_unknown_option_is_an_error(splade_tiny_dir) -> None:
    with pytest.raises(ValueError, match=r"unknown encoder options \['bogus'\]"):
        load_encoder(str(splade_tiny_dir), device="cpu", bogus=1)
    with pytest.raises(ValueError, match="head precision"):
        load_encoder(str(splade_tiny_dir), device="cpu", head_precision="fp8")
