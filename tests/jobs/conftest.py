"""Fixtures of the batch-job tests: the real splade-tiny encoder and small real collections."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def splade_tiny():
    """The offline default encoder (``lsr models pull splade-tiny``); skipped when unavailable."""
    from encoders import load_encoder

    try:
        return load_encoder("splade-tiny", device="cpu")
    except Exception as exc:  # noqa: BLE001 - any failure to get the model means: skip
        pytest.skip(f"splade-tiny is not available here ({exc}); run `lsr models pull splade-tiny`")


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No network, whatever the machine has: HTTP(S) goes to a closed local port."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "ir_datasets"))
    monkeypatch.setenv("LSR_DATA_DIR", str(tmp_path / "lsr-data"))


def make_mini_beir(source: Path, target: Path, n_queries: int, n_extra_docs: int,
                   seed: int = 0) -> Path:  # fmt: skip
    """A small real BEIR folder: the first judged queries, their judged documents and a
    seeded sample of other documents, copied from ``source``."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "qrels").mkdir(exist_ok=True)
    lines = (source / "qrels" / "test.tsv").read_text().splitlines()
    qrels: dict[str, list[str]] = {}
    for line in lines[1:]:
        qid, did, _ = line.split("\t")
        qrels.setdefault(qid, []).append(line)
    queries = [json.loads(x) for x in (source / "queries.jsonl").read_text().splitlines()]
    chosen = [q for q in queries if q["_id"] in qrels][:n_queries]
    chosen_ids = {q["_id"] for q in chosen}
    kept_qrels = [line for q in chosen for line in qrels[q["_id"]]]
    judged_docs = {line.split("\t")[1] for line in kept_qrels}
    docs = [json.loads(x) for x in (source / "corpus.jsonl").read_text().splitlines()]
    others = [d for d in docs if d["_id"] not in judged_docs]
    extra = {d["_id"] for d in random.Random(seed).sample(others, min(n_extra_docs, len(others)))}
    kept_docs = [d for d in docs if d["_id"] in judged_docs or d["_id"] in extra]
    (target / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in kept_docs))
    (target / "queries.jsonl").write_text(
        "".join(json.dumps(q) + "\n" for q in queries if q["_id"] in chosen_ids)
    )
    (target / "qrels" / "test.tsv").write_text("\n".join([lines[0], *kept_qrels]) + "\n")
    return target


@pytest.fixture(scope="session")
def mini_med(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 judged MED queries, their judged abstracts and 60 other abstracts (real text)."""
    return make_mini_beir(shared_data / "med", tmp_path_factory.mktemp("mini") / "med", 5, 60)


def packages_job(shared_data: Path, limit: int, shard_size: int) -> dict:
    """Settings of an encode-only ``lsr index`` job over the first package descriptions."""
    return {
        "corpus": str(shared_data / "vectors" / "packages_docs.txt.gz"),
        "encoder": "splade-tiny",
        "limit": limit,
        "shard_size": shard_size,
        "progress": False,
        "build_index": False,
    }


def shard_bytes(out: Path) -> dict[str, bytes]:
    """Every shard file of a job's output folder, by name."""
    return {p.name: p.read_bytes() for p in sorted((out / "shards").glob("shard-*.parquet"))}
