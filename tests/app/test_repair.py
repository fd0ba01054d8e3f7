"""``lsr repair``: a dry run changes nothing; a repair recovers every readable record and
says exactly which documents were lost; the collection then opens and serves."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.cli import main as lsr
from app.main import create_app
from tests.app.conftest import DIM, make_settings, random_docs
from tests.app.test_damage import flip, populate, segment, snapshot, wal_file


def test_a_flipped_wal_is_recovered_around_the_damage(
    data_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    docs = populate(data_dir)
    flip(wal_file(data_dir), 1 / 3)
    folder = data_dir / "collections" / "bad"
    before = snapshot(folder)
    argv = ["repair", "--data-dir", str(data_dir), "bad"]
    assert lsr([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "fails its checksum" in out and "dry run: nothing was changed" in out
    assert snapshot(folder) == before
    lost = [line for line in out.splitlines() if line.strip().startswith("lost:")]
    assert lost and "1 document(s): doc-" in lost[0]  # the one record the 8 bytes hit
    lost_id = lost[0].split(": ")[-1].split()[0]
    assert lsr(argv) == 0
    assert "repaired" in capsys.readouterr().out
    backups = list((data_dir / "repair-backups").glob("bad-*"))
    assert (
        len(backups) == 1
        and (backups[0] / "wal" / wal_file(data_dir).name).read_bytes()
        == (before[f"wal/{wal_file(data_dir).name}"])
    )
    with TestClient(create_app(make_settings(data_dir))) as client:
        assert client.get("/v1/collections/bad").json()["documents"] == 148
        for doc in docs["bad"][120:]:
            r = client.get(f"/v1/collections/bad/documents/{doc['id']}")
            assert r.status_code == (404 if doc["id"] == lost_id else 200), doc["id"]
    assert lsr([*argv, "--dry-run"]) == 0
    assert "no damage found" in capsys.readouterr().out


def test_a_damaged_segment_is_dropped_and_its_ids_listed(
    data_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    populate(data_dir)
    flip(segment(data_dir) / "values.arrow")
    assert lsr(["repair", "--data-dir", str(data_dir), "bad"]) == 0
    out = capsys.readouterr().out
    assert "drop the segment" in out and "lost: 120 document(s): doc-0, doc-1" in out
    with TestClient(create_app(make_settings(data_dir))) as client:
        assert client.get("/v1/collections/bad").json()["documents"] == 30
        assert client.get("/v1/collections/bad/documents/doc-1000").status_code == 200


def test_damaged_tombstones_are_reset_and_said_so(
    data_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    with TestClient(create_app(make_settings(data_dir))) as client:
        client.post("/v1/collections", json={"name": "bad", "encoder": "none", "dim": DIM})
        client.post("/v1/collections/bad/documents", json={"documents": random_docs(60, seed=1)})
        client.request("DELETE", "/v1/collections/bad/documents", json={"ids": ["doc-3"]})
        client.post("/v1/collections/bad/seal")  # the deletion now lives in deleted.bin only
    flip(segment(data_dir) / "deleted.bin", 0.5, 1)
    assert lsr(["repair", "--data-dir", str(data_dir), "bad"]) == 0
    assert "documents deleted from this segment come back" in capsys.readouterr().out
    with TestClient(create_app(make_settings(data_dir))) as client:
        assert client.get("/v1/collections/bad/documents/doc-3").status_code == 200


def test_a_damaged_config_cannot_be_repaired(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    populate(data_dir)
    flip(data_dir / "collections" / "bad" / "config.json", 0.4, 1)
    before = snapshot(data_dir / "collections" / "bad")
    assert lsr(["repair", "--data-dir", str(data_dir), "bad"]) == 1
    assert "restore config.json" in capsys.readouterr().out
    assert snapshot(data_dir / "collections" / "bad") == before
    assert lsr(["repair", "--data-dir", str(data_dir), "nosuch"]) == 2
