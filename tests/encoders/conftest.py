"""Fixtures for encoder tests: the locally pulled splade-tiny, never the network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from encoders.errors import ModelNotFoundError
from encoders.registry import resolve_registered


@pytest.fixture(scope="session")
def splade_tiny_dir() -> Path:
    """The splade-tiny model directory (``lsr models pull splade-tiny`` puts it there)."""
    try:
        path = resolve_registered("splade-tiny", fetch=False)
    except ModelNotFoundError as exc:
        pytest.skip(f"splade-tiny not pulled ({exc})")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def splade_tiny(splade_tiny_dir: Path):
    """splade-tiny on the CPU in float32."""
    from encoders import load_encoder

    return load_encoder(str(splade_tiny_dir), device="cpu", dtype="float32")


def copy_model_files(src: Path, dst: Path, with_config: bool = False) -> Path:
    """Copy the Hugging Face files of a model directory (and optionally lsr_encoder.json)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy2(src / name, dst / name)
    if with_config:
        shutil.copy2(src / "lsr_encoder.json", dst / "lsr_encoder.json")
    return dst


@pytest.fixture
def beir_folder(tmp_path: Path) -> Path:
    """A tiny BEIR folder: 4 documents, a train query, a test query."""
    root = tmp_path / "data"
    folder = root / "scifact"
    (folder / "qrels").mkdir(parents=True)
    docs = [
        {
            "_id": "d1",
            "title": "Aspirin and pain",
            "text": "Aspirin reduces pain in adults. It is cheap.",
        },
        {
            "_id": "d2",
            "title": "",
            "text": "Wings lift aircraft at speed. "
            "Flaps add lift on landing and slow the aircraft down.",
        },
        {
            "_id": "d3",
            "title": "Cells",
            "text": "Cells divide by mitosis in most tissues of the body.",
        },
        {"_id": "d4", "title": "Stars", "text": "Stars fuse hydrogen into helium in their cores."},
    ]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    queries = [
        {"_id": "q1", "text": "does aspirin help pain"},
        {"_id": "q9", "text": "SECRET TEST"},
    ]
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq9\td4\t1\n")
    return root
