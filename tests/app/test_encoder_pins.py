"""Encoder pins: a collection records the fingerprint of its encoder's model at creation;
when the model behind the name changes, texts are refused (409) while vectors and reads go
on, until the model is put back or accepted with PATCH. The model here is a fitted BM25
directory: small, loaded in milliseconds, and its codes depend on its settings and files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.cli import main as lsr
from app.main import create_app
from app.settings import Settings
from app.storage.checked import read_checked_json, write_checked_json
from encoders import model_fingerprint
from encoders.bm25 import STATS_FILE, BM25Encoder, BM25Stats
from tests.app.conftest import make_settings

TEXTS = {
    "w": "the weather is lovely today",
    "s": "it is so sunny outside",
    "d": "he drove to the stadium",
}


@pytest.fixture(autouse=True)
def digest_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSR_MODELS_DIR", str(tmp_path / "models-cache"))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A fitted BM25 model directory: ``lsr_encoder.json`` + its corpus statistics."""
    return BM25Encoder().fit(list(TEXTS.values())).save(tmp_path / "model")


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return make_settings(data_dir, encoders="*")  # the model is a directory


@contextmanager
def serving(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def change_setting(model: Path) -> None:
    config = json.loads((model / "lsr_encoder.json").read_text())
    config["extra"]["k1"] = 1.5
    (model / "lsr_encoder.json").write_text(json.dumps(config))


def change_weights(model: Path) -> None:
    """Other corpus statistics over the same terms: other document weights, same width."""
    stats = BM25Stats.load(model / STATS_FILE)
    stats.df = np.maximum(stats.df - 1, 1) + np.arange(stats.df.size) % 2
    stats.save(model / STATS_FILE)


def config_of(settings: Settings, name: str) -> dict:
    return read_checked_json(settings.data_dir / "collections" / name / "config.json", "config")


def text_docs(*ids: str) -> dict:
    return {"documents": [{"id": i, "text": TEXTS[i]} for i in ids]}


def create_text_collection(settings: Settings, model: Path) -> str:
    with serving(settings) as client:
        r = client.post("/v1/collections", json={"name": "t", "encoder": str(model)})
        assert r.status_code == 201, r.text
        r = client.post("/v1/collections/t/documents", json=text_docs("w", "s"))
        assert r.status_code == 201, r.text
    return "t"


def assert_changed_409(r, *, field: str | None = None) -> dict:
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "encoder_changed"
    assert "collection 't'" in error["message"] and "PATCH /v1/collections/t" in error["message"]
    if field is not None:
        assert f"field {field!r}" in error["message"]
    return error


def test_creation_pins_the_model(settings: Settings, model: Path) -> None:
    create_text_collection(settings, model)
    pinned = model_fingerprint(model)
    assert config_of(settings, "t")["encoder_fingerprint"] == pinned
    with serving(settings) as client:
        info = client.get("/v1/collections/t").json()
        assert info["encoder_fingerprint"] == pinned
        assert info["encoder_pins"] == [
            {"field": None, "encoder": str(model), "pinned": pinned, "current": pinned,
             "matches": True}
        ]  # fmt: skip
        assert client.get("/v1/collections/t/stats").json()["encoder_pins"] == info["encoder_pins"]
        r = client.post("/v1/collections/t/search", json={"query": "lovely weather", "k": 2})
        assert r.status_code == 200 and r.json()["hits"][0]["id"] == "w"


@pytest.mark.parametrize("change", [change_setting, change_weights], ids=["setting", "weights"])
def test_a_changed_model_refuses_texts_and_serves_vectors(
    settings: Settings, model: Path, import_dir: Path, change
) -> None:
    create_text_collection(settings, model)
    pinned = model_fingerprint(model)
    change(model)
    now = model_fingerprint(model)
    assert now != pinned
    with serving(settings) as client:
        info = client.get("/v1/collections/t").json()  # opens and lists
        assert info["documents"] == 2
        assert info["encoder_pins"][0] | {"encoder": None} == {
            "field": None, "encoder": None, "pinned": pinned, "current": now, "matches": False
        }  # fmt: skip
        assert [c["name"] for c in client.get("/v1/collections").json()["collections"]] == ["t"]
        # everything that would encode text with the new model: 409, naming both models
        error = assert_changed_409(client.post("/v1/collections/t/documents", json=text_docs("d")))
        assert pinned in error["message"] and now in error["message"]
        assert str(model) in error["message"]
        assert_changed_409(client.put("/v1/collections/t/documents", json=text_docs("w")))
        assert_changed_409(client.post("/v1/collections/t/search", json={"query": "sunny"}))
        body = {"searches": [{"query": "sunny"}]}
        assert_changed_409(client.post("/v1/collections/t/search/batch", json=body))
        assert_changed_409(client.post("/v1/collections/t/explain", json={"query": "sunny"}))
        (import_dir / "more.jsonl").write_text(json.dumps({"_id": "j", "text": "sunny"}) + "\n")
        r = client.post("/v1/collections/t/jobs", json={"source": "more.jsonl"})
        assert_changed_409(r)
        # vectors, reads and deletes go on
        vector = client.get("/v1/collections/t/documents/s").json()["vector"]
        r = client.post("/v1/collections/t/search", json={"vector": vector, "k": 1})
        assert r.status_code == 200 and r.json()["hits"][0]["id"] == "s"
        r = client.post("/v1/collections/t/documents", json={"documents": [
            {"id": "v", "vector": vector}]})  # fmt: skip
        assert r.status_code == 201, r.text
        r = client.request("DELETE", "/v1/collections/t/documents", json={"ids": ["v"]})
        assert r.status_code == 200 and r.json()["deleted"] == 1
        assert client.get("/v1/collections/t").json()["documents"] == 2


def test_accepting_the_new_model(settings: Settings, model: Path) -> None:
    create_text_collection(settings, model)
    with serving(settings) as client:
        assert client.patch("/v1/collections/t", json={"target_recall": 0.9}).status_code == 200
    change_setting(model)
    now = model_fingerprint(model)
    with serving(settings) as client:
        r = client.patch("/v1/collections/t", json={"encoder_fingerprint": "sha256:0000"})
        assert r.status_code == 409 and now in r.text  # only the model the client looked at
        for bad in ({"encoder_fingerprint": ""}, {"fields": {"": {"encoder_fingerprint": now}}}):
            assert client.patch("/v1/collections/t", json=bad).status_code == 422, bad
        r = client.patch("/v1/collections/t", json={"encoder_fingerprint": now})
        assert r.status_code == 200, r.text
        assert r.json()["encoder_pins"][0]["matches"] is True
        assert r.json()["target_recall"] == 0.9  # left out: kept
        # re-index by text with the accepted model
        r = client.put("/v1/collections/t/documents", json=text_docs("w", "s", "d"))
        assert r.status_code == 200, r.text
        r = client.post("/v1/collections/t/search", json={"query": "stadium", "k": 1})
        assert r.status_code == 200 and r.json()["hits"][0]["id"] == "d"
    assert config_of(settings, "t")["encoder_fingerprint"] == now  # durable
    with serving(settings) as client:
        assert client.post("/v1/collections/t/search", json={"query": "sunny"}).status_code == 200


def test_putting_the_pinned_model_back(settings: Settings, model: Path, tmp_path: Path) -> None:
    create_text_collection(settings, model)
    shutil.copytree(model, tmp_path / "backup")
    change_weights(model)
    with serving(settings) as client:
        assert_changed_409(client.post("/v1/collections/t/search", json={"query": "sunny"}))
    shutil.rmtree(model)
    shutil.copytree(tmp_path / "backup", model)
    with serving(settings) as client:
        assert client.post("/v1/collections/t/search", json={"query": "sunny"}).status_code == 200


def test_a_model_of_another_width_cannot_be_accepted(settings: Settings, model: Path) -> None:
    create_text_collection(settings, model)
    shutil.rmtree(model)
    BM25Encoder().fit([*TEXTS.values(), "new words widen the vocabulary"]).save(model)
    with serving(settings) as client:
        now = client.get("/v1/collections/t").json()["encoder_pins"][0]["current"]
        r = client.patch("/v1/collections/t", json={"encoder_fingerprint": now})
        assert r.status_code == 422 and "new collection" in r.text, r.text


def test_configs_written_before_pins_are_pinned_when_opened(
    settings: Settings, model: Path, tmp_path: Path
) -> None:
    create_text_collection(settings, model)
    path = settings.data_dir / "collections" / "t" / "config.json"
    body = read_checked_json(path, "config.json")
    pinned = body.pop("encoder_fingerprint")
    write_checked_json(path, body)
    with serving(settings) as client:
        assert client.get("/v1/collections/t").json()["encoder_pins"][0]["matches"] is True
    assert config_of(settings, "t")["encoder_fingerprint"] == pinned
    # a model missing at open: it opens unpinned, and is pinned when it is first used
    write_checked_json(path, body)
    model.rename(tmp_path / "away")
    with serving(settings) as client:
        pins = client.get("/v1/collections/t").json()["encoder_pins"]
        assert pins[0]["pinned"] is None and pins[0]["current"] is None
        assert pins[0]["matches"] is None
        (tmp_path / "away").rename(model)
        assert client.post("/v1/collections/t/search", json={"query": "sunny"}).status_code == 200
    assert config_of(settings, "t")["encoder_fingerprint"] == pinned


def test_an_encoder_without_model_files_has_no_pin(settings: Settings) -> None:
    with serving(settings) as client:
        r = client.post("/v1/collections", json={"name": "v", "encoder": "none", "dim": 8})
        assert r.status_code == 201 and r.json()["encoder_pins"] == []
        r = client.patch("/v1/collections/v", json={"encoder_fingerprint": "sha256:00"})
        assert r.status_code == 422 and "no model files" in r.text
    assert "encoder_fingerprint" not in config_of(settings, "v")  # the file is as before
    with serving(settings) as client:
        doc = {"id": "a", "vector": {"indices": [1, 3], "values": [1.0, 2.0]}}
        r = client.post("/v1/collections/v/documents", json={"documents": [doc]})
        assert r.status_code == 201
        r = client.post("/v1/collections/v/search", json={"vector": doc["vector"]})
        assert r.json()["hits"][0]["id"] == "a"


def accept_field(name: str, fingerprint: str) -> dict:
    return {"fields": {name: {"encoder_fingerprint": fingerprint}}}


def test_fields_are_pinned_and_checked_one_by_one(settings: Settings, model: Path) -> None:
    fields = {"lex": {"encoder": "bm25", "dim": 1000}, "m": {"encoder": str(model)}}
    docs, search = "/v1/collections/t/documents", "/v1/collections/t/search"
    with serving(settings) as client:
        r = client.post("/v1/collections", json={"name": "t", "fields": fields})
        assert r.status_code == 201, r.text
        assert client.post(docs, json=text_docs("w", "s")).status_code == 201
    stored = config_of(settings, "t")["fields"]
    assert stored["m"]["encoder_fingerprint"] == model_fingerprint(model)
    assert "encoder_fingerprint" not in stored["lex"]  # live BM25: statistics in the collection
    change_setting(model)
    now = model_fingerprint(model)
    with serving(settings) as client:
        pins = client.get("/v1/collections/t").json()["encoder_pins"]
        assert [(p["field"], p["matches"]) for p in pins] == [("m", False)]
        assert_changed_409(client.post(docs, json=text_docs("d")), field="m")
        assert_changed_409(client.post(search, json={"query": "sunny"}), field="m")
        r = client.post(search, json={"query": "sunny", "fields": ["lex"]})  # BM25 alone: fine
        assert r.status_code == 200 and r.json()["hits"][0]["id"] == "s"
        m_vector = client.get(f"{docs}/s").json()["fields"]["m"]
        r = client.post(search, json={"vector": m_vector, "fields": ["m"], "k": 1})
        assert r.status_code == 200 and r.json()["hits"][0]["id"] == "s"
        r = client.patch("/v1/collections/t", json={"encoder_fingerprint": now})
        assert r.status_code == 422 and "per field" in r.text
        r = client.patch("/v1/collections/t", json=accept_field("lex", now))
        assert r.status_code == 422 and "no model files" in r.text
        r = client.patch("/v1/collections/t", json=accept_field("m", now))
        assert r.status_code == 200, r.text
        assert client.put(docs, json=text_docs("w", "s", "d")).status_code == 200
        assert client.post(search, json={"query": "stadium"}).json()["hits"][0]["id"] == "d"


def test_lsr_models_fingerprint_prints_what_a_collection_pins(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert lsr(["models", "fingerprint", str(model)]) == 0
    assert f"{model}  {model_fingerprint(model)}  (" in capsys.readouterr().out
    assert lsr(["models", "fingerprint", str(tmp_path / "absent")]) == 1
    assert "error:" in capsys.readouterr().out
