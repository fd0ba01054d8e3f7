"""Collections at the storage level: writes, deletes, upserts, seal, merge and reopen,
checked against a plain dict model with brute-force scoring."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from app.errors import ConflictError
from app.storage.batch import DocumentBatch
from app.storage.collection import Collection, CollectionConfig, MaintenancePolicy
from app.storage.filters import MetadataFilter
from app.storage.vectors import SparseVector, to_csr

DIM = 120
EXACT_INDEX = {"n_postings": None, "summary_energy": 1.0, "centroid_fraction": 0.2}
EXACT_QUERY = {"query_cut": 1000, "heap_factor": 0.0}


def _policy(**kw: object) -> MaintenancePolicy:
    base = {
        "seal_rows": 10_000,
        "flat_rows": 30,
        "max_segments": 3,
        "compact_deleted_fraction": 0.5,
    }
    base.update(kw)
    return MaintenancePolicy(**base)


def _open(path: Path, index_params: dict | None = None) -> Collection:
    config = CollectionConfig(
        "c", "none", DIM, index_params or EXACT_INDEX, EXACT_QUERY, time.time()
    )
    return Collection.create(path, config, _policy())


def _batch(ids: list[str], vecs: list[SparseVector], metas: list | None = None) -> DocumentBatch:
    return DocumentBatch.of(ids, to_csr(vecs, DIM), metas)


def _vec(rng: np.random.Generator) -> SparseVector:
    nnz = int(rng.integers(1, 10))
    cols = np.sort(rng.choice(DIM, nnz, replace=False)).astype(np.int32)
    vals = rng.uniform(0.1, 3, nnz).astype(np.float16).astype(np.float32)
    return SparseVector(cols, vals)


def _brute(
    model: dict[str, tuple[SparseVector, dict]],
    q: SparseVector,
    k: int,
    flt: MetadataFilter | None = None,
) -> list[tuple[str, float]]:
    dense = np.zeros(DIM, np.float64)
    dense[q.indices] = q.values
    scored = []
    for doc_id, (vec, meta) in model.items():
        if flt is not None and not flt.matches(meta):
            continue
        s = float(dense[vec.indices] @ vec.values)
        if s > 0:
            scored.append((doc_id, s))
    scored.sort(key=lambda t: (-t[1], t[0]))
    return scored[:k]


def _check(
    coll: Collection,
    model: dict,
    rng: np.random.Generator,
    exact: bool = False,
    flt: MetadataFilter | None = None,
) -> None:
    for _ in range(8):
        q = _vec(rng)
        got = coll.search([q], 10, flt=flt, exact=exact)[0]
        want = _brute(model, q, 10, flt)
        np.testing.assert_allclose([h.score for h in got], [s for _, s in want], rtol=1e-4)
        # ids equal up to ties on the score
        assert {h.doc_id for h in got if h.score > want[-1][1] + 1e-4} <= {d for d, _ in want}
        assert len(got) == len(want)


def test_random_operations_match_a_dict_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    coll = _open(tmp_path / "c")
    model: dict[str, tuple[SparseVector, dict]] = {}
    next_id = 0
    for step in range(30):
        op = rng.choice(
            ["add", "upsert", "delete", "seal", "merge", "reopen"],
            p=[0.35, 0.2, 0.2, 0.1, 0.07, 0.08],
        )
        if op == "add":
            ids = [f"d{next_id + i}" for i in range(int(rng.integers(1, 40)))]
            next_id += len(ids)
            vecs = [_vec(rng) for _ in ids]
            metas = [{"g": int(rng.integers(3))} for _ in ids]
            coll.write(_batch(ids, vecs, metas), upsert=False)
            model.update({d: (v, m) for d, v, m in zip(ids, vecs, metas, strict=True)})
        elif op == "upsert" and model:
            ids = list(rng.choice(sorted(model), min(5, len(model)), replace=False)) + [f"n{step}"]
            vecs = [_vec(rng) for _ in ids]
            coll.write(_batch(ids, vecs, [None] * len(ids)), upsert=True)
            model.update({d: (v, {}) for d, v in zip(ids, vecs, strict=True)})
        elif op == "delete" and model:
            ids = list(rng.choice(sorted(model), min(6, len(model)), replace=False)) + ["missing"]
            assert sorted(coll.delete(ids)) == sorted(ids[:-1])
            for d in ids[:-1]:
                model.pop(d)
        elif op == "seal":
            coll.seal()
        elif op == "merge":
            coll.merge(coll.sealed_segments())
        elif op == "reopen":
            coll.close()
            coll = Collection.open(tmp_path / "c", _policy())
        assert len(coll.id_map) == len(model)
        _check(coll, model, rng)
    _check(coll, model, rng, flt=MetadataFilter.parse({"g": {"in": [0, 2]}}))
    for doc_id, (vec, _) in list(model.items())[:20]:
        seg, row = coll.locate(doc_id)
        got = coll.vector_of(seg, row)
        np.testing.assert_array_equal(got.indices, vec.indices)
        np.testing.assert_array_equal(got.values, vec.values)


def test_search_is_the_same_before_and_after_seal_and_merge(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    coll = _open(tmp_path / "c")
    for batch in range(4):
        ids = [f"b{batch}-{i}" for i in range(60)]
        coll.write(_batch(ids, [_vec(rng) for _ in ids], [None] * 60), upsert=False)
        if batch < 3:
            coll.seal()
    coll.delete([f"b0-{i}" for i in range(0, 60, 3)])
    queries = [_vec(rng) for _ in range(20)]

    def top() -> list[list[tuple[str, float]]]:
        return [[(h.doc_id, round(h.score, 4)) for h in hits] for hits in coll.search(queries, 10)]

    before = top()
    coll.seal()
    assert all(s.index is not None for s in coll.sealed_segments())
    after_seal = top()
    coll.merge(coll.sealed_segments())
    assert len(coll.sealed_segments()) == 1
    after_merge = top()
    coll.close()
    coll = Collection.open(tmp_path / "c", _policy())
    reopened = top()
    assert before == after_seal == after_merge == reopened


def test_add_refuses_existing_ids_and_applies_nothing(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    coll = _open(tmp_path / "c")
    coll.write(_batch(["a"], [_vec(rng)], [None]), upsert=False)
    with pytest.raises(ConflictError):
        coll.write(_batch(["b", "a"], [_vec(rng), _vec(rng)], [None, None]), upsert=False)
    assert sorted(coll.id_map) == ["a"]


def test_unreferenced_segment_folders_and_old_wal_files_are_removed(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    coll = _open(tmp_path / "c")
    coll.write(_batch(["a", "b"], [_vec(rng), _vec(rng)], [None, None]), upsert=False)
    coll.seal()
    coll.close()
    (tmp_path / "c" / "segments" / ".seg-00000099.tmp").mkdir()
    (tmp_path / "c" / "segments" / "seg-00000098").mkdir()
    coll = Collection.open(tmp_path / "c", _policy())
    assert sorted(p.name for p in (tmp_path / "c" / "segments").iterdir()) == ["seg-00000001"]
    assert len(list((tmp_path / "c" / "wal").glob("*.log"))) == 1
    assert sorted(coll.id_map) == ["a", "b"]


def test_an_unreadable_index_is_rebuilt_from_the_segment_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    coll = _open(tmp_path / "c")
    ids = [f"d{i}" for i in range(80)]
    coll.write(_batch(ids, [_vec(rng) for _ in ids], [None] * 80), upsert=False)
    coll.seal()
    queries = [_vec(rng) for _ in range(10)]
    want = [[(h.doc_id, h.score) for h in hits] for hits in coll.search(queries, 5)]
    coll.close()
    index_dir = tmp_path / "c" / "segments" / "seg-00000001" / "index"
    manifest = next(index_dir.glob("*.json"))
    manifest.write_text("{ damaged")  # e.g. an index format from another version
    coll = Collection.open(tmp_path / "c", _policy())
    assert coll.sealed_segments()[0].index is not None
    assert [[(h.doc_id, h.score) for h in hits] for hits in coll.search(queries, 5)] == want


def test_a_failed_seal_keeps_its_wal_and_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.storage.sealed import SealedSegment

    rng = np.random.default_rng(5)
    coll = _open(tmp_path / "c")
    model = {}
    for batch in range(3):
        ids = [f"b{batch}-{i}" for i in range(40)]
        vecs = [_vec(rng) for _ in ids]
        coll.write(_batch(ids, vecs, [None] * 40), upsert=False)
        model.update({d: (v, {}) for d, v in zip(ids, vecs, strict=True)})
        if batch == 0:
            coll.seal()
        if batch == 1:
            real_write = SealedSegment.write

            def disk_full(*args: object, **kwargs: object) -> None:
                raise OSError(28, "No space left on device")

            monkeypatch.setattr(SealedSegment, "write", staticmethod(disk_full))
            with pytest.raises(OSError):
                coll.seal()
            monkeypatch.setattr(SealedSegment, "write", staticmethod(real_write))
    assert coll.needs_seal()  # the failed segment waits for a retry, still searchable
    _check(coll, model, rng)
    coll.close()
    coll = Collection.open(tmp_path / "c", _policy())  # nothing lost across a restart
    assert len(coll.id_map) == len(model)
    coll.seal()
    coll.write(_batch(["late"], [_vec(rng)], [None]), upsert=False)
    coll.close()
    coll = Collection.open(tmp_path / "c", _policy())
    assert len(coll.id_map) == len(model) + 1
    _check(coll, {**model, "late": (coll.vector_of(*coll.locate("late")), {})}, rng)


def test_a_failed_seal_is_retried_in_the_same_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.storage.sealed import SealedSegment

    rng = np.random.default_rng(6)
    coll = _open(tmp_path / "c")
    coll.write(_batch([f"a{i}" for i in range(50)], [_vec(rng) for _ in range(50)]), upsert=False)
    real_write = SealedSegment.write
    monkeypatch.setattr(
        SealedSegment,
        "write",
        staticmethod(lambda *a, **k: (_ for _ in ()).throw(OSError(5, "EIO"))),
    )
    with pytest.raises(OSError):
        coll.seal()
    monkeypatch.setattr(SealedSegment, "write", staticmethod(real_write))
    coll.write(_batch([f"b{i}" for i in range(10)], [_vec(rng) for _ in range(10)]), upsert=False)
    assert coll.seal()  # seals the segment that failed
    assert [s.n_rows for s in coll.sealed_segments()] == [50]
    assert coll.seal()  # then the mutable one
    coll.close()
    coll = Collection.open(tmp_path / "c", _policy())
    assert len(coll.id_map) == 60 and [s.n_rows for s in coll.sealed_segments()] == [50, 10]


def test_a_background_check_during_a_seal_does_not_seal_the_new_mutable_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The maintenance thread asks ``needs_seal`` while an explicit seal is building its
    segment (the frozen segment says yes), then waits for the seal's lock. By the time it has
    the lock the seal is done and the mutable segment is a new one holding only the writes
    made meanwhile: ``seal_if_needed`` leaves it alone (a loaded CI once saw it sealed)."""
    import threading

    from app.storage.sealed import SealedSegment

    rng = np.random.default_rng(9)
    coll = _open(tmp_path / "c")
    coll.write(_batch([f"a{i}" for i in range(20)], [_vec(rng) for _ in range(20)]), upsert=False)
    building, release = threading.Event(), threading.Event()
    real_write = SealedSegment.write

    def slow_write(*args: object, **kwargs: object) -> None:
        building.set()
        assert release.wait(30)
        real_write(*args, **kwargs)

    monkeypatch.setattr(SealedSegment, "write", staticmethod(slow_write))
    explicit = threading.Thread(target=coll.seal)
    explicit.start()
    assert building.wait(30)
    assert coll.needs_seal()  # what the background thread sees now
    background: list[bool] = []
    waiting = threading.Thread(target=lambda: background.append(coll.seal_if_needed()))
    waiting.start()
    coll.write(_batch(["late0", "late1"], [_vec(rng), _vec(rng)]), upsert=False)
    release.set()
    explicit.join(30)
    waiting.join(30)
    assert background == [False]
    view = coll.view
    kinds = [(coll.segment_kind(s), n) for s, n in zip(view.segments, view.n_rows, strict=True)]
    assert kinds == [("sealed", 20), ("mutable", 2)]
    assert not coll.needs_seal()
    coll.close()
