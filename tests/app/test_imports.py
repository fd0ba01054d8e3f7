"""Issue 11.5: jobs read files only under the import roots (default DATA_DIR/import), and
their errors never echo server paths, link targets, process ids or whether a path exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.cli import build_parser
from app.commands.serve import settings_from_args
from app.main import create_app
from tests.app.conftest import make_settings, wait_for_job


def vectors_file(path: Path, n: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"v{i}", "vector": {str(i): 1.0}}) + "\n"
                            for i in range(n)))  # fmt: skip
    return path


@pytest.fixture
def vec_client(data_dir: Path) -> TestClient:
    with TestClient(create_app(make_settings(data_dir))) as client:
        client.post("/v1/collections", json={"name": "v", "encoder": "none", "dim": 50})
        yield client


def test_default_root_is_the_data_dirs_import_folder(
    vec_client: TestClient, data_dir: Path, tmp_path: Path
) -> None:
    assert (data_dir / "import").is_dir()  # created at start-up, for operators to fill
    outside = vectors_file(tmp_path / "elsewhere" / "v.jsonl")
    r = vec_client.post("/v1/collections/v/jobs", json={"source": str(outside)})
    assert r.status_code == 422, r.text
    vectors_file(data_dir / "import" / "sub" / "v.jsonl")
    for source in ("sub/v.jsonl", str(data_dir / "import" / "sub" / "v.jsonl")):
        r = vec_client.post("/v1/collections/v/jobs", json={"source": source})
        assert r.status_code == 202, r.text
        assert r.json()["source"] == "sub/v.jsonl"  # shown relative to the root
        assert wait_for_job(vec_client, r.json()["id"])["state"] == "done"


def test_refusals_reveal_nothing_about_the_server(
    vec_client: TestClient, data_dir: Path, tmp_path: Path
) -> None:
    secret = vectors_file(tmp_path / "secret" / "private.jsonl")
    root = data_dir / "import"
    (root / "link.jsonl").symlink_to(secret)  # a link out of the root
    (root / "dirlink").symlink_to(secret.parent, target_is_directory=True)
    sources = [
        str(secret), "/etc/hostname", "/proc/self/environ", "/proc/self/cwd/x.jsonl",
        "/no/such/file.jsonl", "link.jsonl", "dirlink/private.jsonl", "../import/../x.jsonl",
        "missing.jsonl", "~nouser/x", "a\x00b",
    ]  # fmt: skip
    messages = []
    for source in sources:
        r = vec_client.post("/v1/collections/v/jobs", json={"source": source})
        assert r.status_code == 422, (source, r.text)
        # beyond the client's own words: no resolved path, link target or process id
        message = r.json()["error"]["message"].replace(repr(source[:200]), "SOURCE")
        assert str(tmp_path) not in message and str(data_dir) not in message, message
        assert not re.search(r"/proc/\d", message), message
        messages.append(message)
    assert len(set(messages)) == 1, set(messages)  # existing or not, inside or out: one answer


def test_corpus_errors_name_the_file_relative_to_the_root(
    vec_client: TestClient, data_dir: Path
) -> None:
    bad = data_dir / "import" / "bad.jsonl"
    bad.write_text('{"id": "a", "vector": {"1": 1}}\n{"id": "b", "vector": {oops}\n')
    r = vec_client.post("/v1/collections/v/jobs", json={"source": "bad.jsonl"})
    job = wait_for_job(vec_client, r.json()["id"])
    assert job["state"] == "failed" and "bad.jsonl:2" in job["error"]
    assert str(data_dir) not in job["error"]


def test_serve_import_root_option(tmp_path: Path) -> None:
    argv = ["serve", "--data-dir", str(tmp_path / "d"), "--import-root", str(tmp_path / "a"),
            "--import-root", str(tmp_path / "b")]  # fmt: skip
    settings = settings_from_args(build_parser(argv).parse_args(argv))
    assert settings.import_root_list == [(tmp_path / "a").resolve(), (tmp_path / "b").resolve()]
    default = settings_from_args(build_parser(["serve"]).parse_args(["serve"]))
    assert default.import_root_list == [(default.data_dir / "import").resolve()]
