"""The pyseismic-lsr adapter: both dataset APIs, batch answers put back in query order."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from benchmarks.pyseismic_lsr import PySeismic, add_rows, dataset_from_chunks, new_dataset


class OldDataset:
    """pyseismic 0.5.2's ``SeismicDataset``: no ``dim``, one ``add_document`` per row."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, float]] = {}

    def add_document(self, doc_id: str, tokens: np.ndarray, values: np.ndarray) -> None:
        assert tokens.dtype == np.dtype("<U30") and values.dtype == np.float32
        self.docs[doc_id] = dict(zip(tokens.tolist(), values.tolist(), strict=True))


class NewDataset:
    """pyseismic 0.5.4's: ``dim`` and CSR batches of integer components."""

    def __init__(self, dim: int = 0) -> None:
        self.dim = dim
        self.docs: dict[str, dict[str, float]] = {}

    def add_documents_by_id(self, ids, components, values, offsets) -> int:
        assert components.dtype == np.int64 and offsets.dtype == np.int64 and offsets[0] == 0
        for i, doc_id in enumerate(ids):
            a, b = offsets[i], offsets[i + 1]
            if b > a:
                self.docs[doc_id] = {
                    str(c): float(v) for c, v in zip(components[a:b], values[a:b], strict=True)
                }
        return len(ids)


def fake_seismic(dataset_cls: type) -> SimpleNamespace:
    return SimpleNamespace(SeismicDataset=dataset_cls, get_seismic_string=lambda: "<U30")


def sample(seed: int = 0) -> sp.csr_array:
    m = sp.random_array((9, 12), density=0.3, format="csr", rng=seed, dtype=np.float32)
    m = sp.csr_array(m.toarray())  # rows with no entry stay empty
    return m


def test_old_and_new_dataset_apis_hold_the_same_documents() -> None:
    m = sample()
    old = dataset_from_chunks(fake_seismic(OldDataset), [m[:4], m[4:]], 12)
    new = dataset_from_chunks(fake_seismic(NewDataset), [m[:4], m[4:]], 12)
    assert isinstance(old, OldDataset) and isinstance(new, NewDataset) and new.dim == 12
    assert old.docs == new.docs
    expected = {
        str(r): {str(c): float(np.float32(m[r, c])) for c in np.flatnonzero(m[[r], :].toarray())}
        for r in range(9)
        if m[[r], :].nnz
    }
    assert old.docs == expected


def test_new_dataset_falls_back_without_dim() -> None:
    assert isinstance(new_dataset(fake_seismic(OldDataset), 30), OldDataset)


def test_add_rows_numbers_documents_from_first_row() -> None:
    ds = NewDataset(12)
    add_rows(fake_seismic(NewDataset), ds, sample(1)[2:5], first_row=100)
    assert set(ds.docs) <= {"100", "101", "102"}


def test_batch_ids_follow_query_ids_not_list_order() -> None:
    raw = [[("2", 1.0, "7")], [], [("0", 3.0, "5"), ("0", 2.0, "1")]]
    assert PySeismic.batch_ids(raw) == [[5, 1], [], [7]]


def test_real_pyseismic_single_equals_batch() -> None:
    pytest.importorskip("seismic")
    rng = np.random.default_rng(3)
    docs = sp.random_array((400, 50), density=0.15, format="csr", rng=rng, dtype=np.float32)
    queries = sp.random_array((25, 50), density=0.2, format="csr", rng=rng, dtype=np.float32)
    peer = PySeismic.build(docs, {"n_postings": 1000}, threads=2, k=5)
    qs = peer.prepare(queries)
    single = [peer.ids(peer.search_one_raw(q, 50, 0.0)) for q in qs]
    assert peer.batch_ids(peer.search_batch_raw(qs, 50, 0.0, 2)) == single
    exact = np.argsort(-(queries @ docs.T).toarray(), axis=1, kind="stable")[:, :5]
    for got, want in zip(single, exact, strict=True):
        assert set(got) == set(want.tolist())
    assert peer.saved_bytes() > 0
