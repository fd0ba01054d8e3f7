"""``lsr index``: encode into shards, stop, resume without re-encoding, same index as one run."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from app.cli import main as lsr
from app.jobs.encode import encode_shard
from app.jobs.errors import JobStateError
from app.jobs.indexing.job import IndexJobConfig, read_doc_ids, run_index_job
from app.jobs.indexing.shard_encoders import CPU_THREADS, set_torch_threads
from app.jobs.indexing.shards import ShardStore
from tests.conftest import PATIENCE_S

PACKAGES = "vectors/packages_docs.txt.gz"


def job(shared_data: Path, out: Path, **kwargs) -> IndexJobConfig:
    params = {"limit": 150, "shard_size": 40, "batch_size": 32, "progress": False}
    params.update(kwargs)
    return IndexJobConfig(corpus=str(shared_data / PACKAGES), encoder="splade-tiny", out=out,
                          **params)  # fmt: skip


def package_queries(shared_data: Path, encoder, n: int = 20):
    with gzip.open(shared_data / "vectors/packages_queries.txt.gz", "rt") as handle:
        texts = [line.rstrip("\n") for line in islice(handle, n)]
    return encoder.encode_queries(texts)


def shard_stamps(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("shard-*")}


def test_resume_skips_finished_shards_and_matches_one_run(
    shared_data: Path, splade_tiny, tmp_path: Path
) -> None:
    from index import SeismicIndex

    one = run_index_job(job(shared_data, tmp_path / "one"), encoder=splade_tiny)
    assert one.complete and one.documents == 150 and one.shards_total == 4
    assert one.docs_encoded == 150 and one.index_bytes > 0 and one.nnz_per_doc > 0

    stopped = run_index_job(job(shared_data, tmp_path / "two", max_shards=2), encoder=splade_tiny)
    assert not stopped.complete and stopped.shards_total == 2 and stopped.docs_encoded == 80
    assert not (tmp_path / "two" / "index").exists()
    before = shard_stamps(tmp_path / "two" / "shards")

    resumed = run_index_job(job(shared_data, tmp_path / "two"), encoder=splade_tiny)
    assert resumed.complete and resumed.shards_reused == 2 and resumed.shards_encoded == 2
    assert resumed.docs_encoded == 150 - 80
    after = shard_stamps(tmp_path / "two" / "shards")
    assert all(after[name] == stamp for name, stamp in before.items())  # not rewritten

    dim = splade_tiny.dim
    ids_one, docs_one = ShardStore(tmp_path / "one" / "shards").read_all(dim)
    ids_two, docs_two = ShardStore(tmp_path / "two" / "shards").read_all(dim)
    assert ids_one == ids_two == [str(i) for i in range(150)]
    assert (docs_one != docs_two).nnz == 0
    for name in before:  # resumed shards are the very files one run writes
        assert (tmp_path / "one" / "shards" / name).read_bytes() == (
            tmp_path / "two" / "shards" / name
        ).read_bytes()
    assert read_doc_ids(tmp_path / "one" / "doc_ids.parquet") == ids_one

    queries = package_queries(shared_data, splade_tiny)
    rows_one, scores_one = SeismicIndex.load(tmp_path / "one" / "index").search(queries, k=10)
    rows_two, scores_two = SeismicIndex.load(tmp_path / "two" / "index").search(queries, k=10)
    np.testing.assert_array_equal(rows_one, rows_two)
    np.testing.assert_array_equal(scores_one, scores_two)
    # built shard by shard, the index answers as one built from the stacked matrix
    rows_ref, scores_ref = SeismicIndex.build(docs_one).search(queries, k=10)
    np.testing.assert_array_equal(rows_one, rows_ref)
    np.testing.assert_array_equal(scores_one, scores_ref)

    again = run_index_job(job(shared_data, tmp_path / "two"), encoder=splade_tiny)
    assert again.complete and again.docs_encoded == 0 and again.shards_reused == 4


def test_changed_settings_are_refused(shared_data: Path, splade_tiny, tmp_path: Path) -> None:
    run_index_job(job(shared_data, tmp_path, limit=40, max_shards=0), encoder=splade_tiny)
    with pytest.raises(JobStateError, match="another job"):
        run_index_job(job(shared_data, tmp_path, limit=40, shard_size=32), encoder=splade_tiny)


def test_a_resume_with_another_model_behind_the_name_is_refused(
    shared_data: Path, splade_tiny, tmp_path: Path
) -> None:
    """The manifest records the encoding model's fingerprint: the same encoder name with
    other files behind it (here: the recorded fingerprint edited) cannot resume the job and
    mix two models' vectors; a manifest from before fingerprints resumes on the rest."""
    from encoders.fingerprint import model_fingerprint

    stopped = run_index_job(job(shared_data, tmp_path, max_shards=1), encoder=splade_tiny)
    assert not stopped.complete
    store = ShardStore(tmp_path / "shards")
    manifest = store.read_manifest()
    assert manifest["settings"]["encoder_fingerprint"] == model_fingerprint("splade-tiny")
    store.write_manifest({**manifest, "settings": {**manifest["settings"],
                          "encoder_fingerprint": "sha256:0000000000000000"}})  # fmt: skip
    with pytest.raises(JobStateError, match="model behind encoder 'splade-tiny' changed"):
        run_index_job(job(shared_data, tmp_path), encoder=splade_tiny)
    old = {k: v for k, v in manifest["settings"].items() if k != "encoder_fingerprint"}
    store.write_manifest({**manifest, "settings": old})
    resumed = run_index_job(job(shared_data, tmp_path), encoder=splade_tiny)
    assert resumed.complete and resumed.shards_reused == 1


def test_empty_corpus_is_an_error(splade_tiny, tmp_path: Path) -> None:
    corpus = tmp_path / "empty.jsonl"
    corpus.write_text("\n")
    config = IndexJobConfig(corpus=str(corpus), encoder="splade-tiny", out=tmp_path / "out",
                            progress=False)  # fmt: skip
    with pytest.raises(JobStateError, match="no encoded shards|empty"):
        run_index_job(config, encoder=splade_tiny)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--corpus", "missing.jsonl"], "no such file"),
        (["--corpus", "x.jsonl", "--shard-size", "0"], "shard_size"),
        (["--corpus", "x.jsonl", "--index-params", "oops"], "KEY=VALUE"),
    ],
)
def test_cli_bad_input_exits_2_with_a_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    message: str,
) -> None:
    (tmp_path / "x.jsonl").write_text('{"_id": "a", "text": "b"}\n')
    monkeypatch.chdir(tmp_path)
    assert lsr(["index", *argv, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_resume_after_kill_9(shared_data: Path, splade_tiny, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "app.cli", "index", "--corpus", str(shared_data / PACKAGES),
           "--encoder", "splade-tiny", "--out", str(out), "--limit", "1500",
           "--shard-size", "128", "--no-progress", "--no-build"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + PATIENCE_S
    while not (out / "shards" / "shard-000001.parquet").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the job ended or stalled before writing two shards")
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = ShardStore(out / "shards")
    done = store.complete_shards()
    assert 2 <= len(done) < 12
    summary = run_index_job(
        IndexJobConfig(corpus=str(shared_data / PACKAGES), encoder="splade-tiny", out=out,
                       limit=1500, shard_size=128, progress=False, build_index=False),
        encoder=splade_tiny,
    )  # fmt: skip
    assert summary.complete and summary.shards_reused == len(done)
    assert summary.docs_encoded == 1500 - 128 * len(done)
    # A shard from before the kill and one after both equal a fresh encoding of their texts,
    # bit for bit: the job hands the encoder whole shards, as encode_shard does, with torch
    # on one thread per worker.
    set_torch_threads(CPU_THREADS)
    with gzip.open(shared_data / PACKAGES, "rt") as handle:
        texts = [line.rstrip("\n") for line in islice(handle, 1500)]
    for number in (0, 11):
        ids, matrix = store.read_shard(number, splade_tiny.dim)
        chunk = texts[number * 128 : (number + 1) * 128]
        fresh = encode_shard(splade_tiny, chunk)
        assert ids == [str(i) for i in range(number * 128, number * 128 + len(chunk))]
        np.testing.assert_array_equal(matrix.indptr, fresh.indptr)
        np.testing.assert_array_equal(matrix.indices, fresh.indices)
        np.testing.assert_array_equal(matrix.data, fresh.data)


def test_publish_as_a_service_collection(shared_data: Path, splade_tiny, tmp_path: Path) -> None:
    from app.services.registry import CollectionRegistry
    from app.settings import Settings
    from app.storage.vectors import rows_from_csr

    config = job(shared_data, tmp_path / "out", limit=60, build_index=False,
                 collection="packages", data_dir=tmp_path / "data")  # fmt: skip
    summary = run_index_job(config, encoder=splade_tiny)
    assert summary.collection is not None and summary.collection["documents"] == 60
    registry = CollectionRegistry(Settings(data_dir=tmp_path / "data"))
    registry.open_all()
    collection = registry.get("packages")
    try:
        # pinned to the model that encoded the shards, as a collection created over REST is
        from encoders.fingerprint import model_fingerprint

        assert collection.config.encoder_fingerprint == model_fingerprint("splade-tiny")
        assert len(collection.sealed_segments()) == 1
        _, docs = ShardStore(tmp_path / "out" / "shards").read_all(splade_tiny.dim)
        hits = collection.search(rows_from_csr(docs[[7]]), k=3, exact=True)[0]
        assert hits[0].doc_id == "7"  # a document is its own best match
    finally:
        collection.close()
    with pytest.raises(JobStateError, match="already exists"):
        run_index_job(config, encoder=splade_tiny)


def test_cli_index_stops_and_resumes(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    corpus = tmp_path / "scifact-head.jsonl"
    with open(shared_data / "scifact" / "corpus.jsonl") as handle:
        corpus.write_text("".join(islice(handle, 20)))
    argv = ["index", "--corpus", str(corpus), "--encoder", "splade-tiny", "--out",
            str(tmp_path / "out"), "--shard-size", "8", "--no-progress"]  # fmt: skip
    assert lsr([*argv, "--max-shards", "1"]) == 3
    assert "run the same command again to resume" in capsys.readouterr().out
    assert lsr(argv) == 0
    out = capsys.readouterr().out
    assert "20 in 3 shards (1 reused, 2 encoded now)" in out
    assert read_doc_ids(tmp_path / "out" / "doc_ids.parquet")[:2] == ["4983", "5836"]
