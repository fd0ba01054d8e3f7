"""The Rust Seismic (``pyseismic-lsr``) as a peer in our benchmarks, across its versions.

0.5.4 has ``SeismicDataset(dim=...)`` and ``add_documents_by_id`` (integer component ids,
CSR batches); 0.5.2 and older have only ``SeismicDataset()`` and one
``add_document(id, tokens, values)`` per row. Either way a column ``c`` is addressed as the
token ``str(c)`` and a document by its row number as a string, so both paths give the same
index and the same query strings. Empty rows are skipped (pyseismic drops them anyway).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse as sp

# Rows handed to pyseismic per call: bounds the int64 copies of the indices.
ADD_CHUNK = 1 << 20


def import_seismic() -> ModuleType:
    """``import seismic`` with a message that says how to get it."""
    try:
        import seismic
    except ImportError as exc:
        raise ImportError(
            "pyseismic-lsr is not installed: pip install -e '.[bench]' (or run with --no-pyseismic)"
        ) from exc
    return seismic


def new_dataset(seismic: ModuleType, dim: int) -> Any:
    """An empty ``SeismicDataset`` (sized to ``dim`` where the version allows it)."""
    try:
        return seismic.SeismicDataset(dim=dim)
    except TypeError:  # 0.5.2 and older: no dim argument
        return seismic.SeismicDataset()


def add_rows(seismic: ModuleType, dataset: Any, chunk: sp.csr_array, first_row: int) -> None:
    """Append ``chunk``'s rows as documents ``str(first_row + i)`` (empty rows skipped)."""
    chunk = sp.csr_array(chunk)
    chunk.sort_indices()
    indptr = np.asarray(chunk.indptr, dtype=np.int64)
    ids = [str(first_row + i) for i in range(chunk.shape[0])]
    if hasattr(dataset, "add_documents_by_id"):
        dataset.add_documents_by_id(
            ids,
            np.asarray(chunk.indices, dtype=np.int64),
            np.asarray(chunk.data, dtype=np.float32),
            indptr - indptr[0],
        )
        return
    string = seismic.get_seismic_string()
    for i, (a, b) in enumerate(zip(indptr[:-1], indptr[1:], strict=True)):
        if b > a:
            dataset.add_document(
                ids[i],
                np.array([str(c) for c in chunk.indices[a:b]], dtype=string),
                np.asarray(chunk.data[a:b], dtype=np.float32),
            )


def dataset_from_chunks(seismic: ModuleType, chunks: Iterable[sp.csr_array], dim: int) -> Any:
    """A ``SeismicDataset`` holding all rows of ``chunks`` in order."""
    dataset = new_dataset(seismic, dim)
    row = 0
    for chunk in chunks:
        add_rows(seismic, dataset, chunk, row)
        row += chunk.shape[0]
    return dataset


def csr_chunks(docs: sp.csr_array, rows: int = ADD_CHUNK) -> Iterable[sp.csr_array]:
    for a in range(0, docs.shape[0], rows):
        yield docs[a : a + rows]


class PySeismic:
    """A built ``seismic.SeismicIndex`` with the calls the benchmarks time.

    ``search_one_raw``/``search_batch_raw`` are the timed calls; turning their tuples into
    row numbers (``ids``/``batch_ids``) happens outside the timed region.
    """

    def __init__(self, seismic: ModuleType, index: Any, k: int) -> None:
        self.seismic = seismic
        self.index = index
        self.k = k
        self.build_seconds = 0.0
        self.load_seconds = 0.0

    @classmethod
    def build(cls, docs: sp.csr_array, params: dict, threads: int, k: int = 10) -> PySeismic:
        """Load ``docs`` into a dataset (timed apart) and build with ``params`` on ``threads``."""
        seismic = import_seismic()
        start = time.perf_counter()
        dataset = dataset_from_chunks(seismic, csr_chunks(docs), docs.shape[1])
        loaded = time.perf_counter()
        index = seismic.SeismicIndex.build_from_dataset(dataset, num_threads=threads, **params)
        built = time.perf_counter()
        peer = cls(seismic, index, k)
        peer.load_seconds, peer.build_seconds = loaded - start, built - loaded
        return peer

    def saved_bytes(self) -> int:
        """Size of the index as ``save`` writes it."""
        tmp = Path(tempfile.mkdtemp(prefix="bench-ps-"))
        try:
            self.index.save(str(tmp / "ix"))
            return sum(p.stat().st_size for p in tmp.iterdir())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def prepare(self, queries: sp.csr_array) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each query as (token strings, float32 values), built once before timing."""
        string = self.seismic.get_seismic_string()
        q = sp.csr_array(queries)
        return [
            (
                np.array([str(c) for c in q.indices[a:b]], dtype=string),
                np.asarray(q.data[a:b], dtype=np.float32),
            )
            for a, b in zip(q.indptr[:-1], q.indptr[1:], strict=True)
        ]

    def search_one_raw(self, q: tuple[np.ndarray, np.ndarray], qc: int, hf: float) -> Any:
        return self.index.search("q", q[0], q[1], k=self.k, query_cut=qc, heap_factor=hf)

    def search_batch_raw(self, qs: list, qc: int, hf: float, threads: int) -> Any:
        ids = np.array([str(i) for i in range(len(qs))], dtype=self.seismic.get_seismic_string())
        return self.index.batch_search(
            ids,
            [q[0] for q in qs],
            [q[1] for q in qs],
            k=self.k,
            query_cut=qc,
            heap_factor=hf,
            num_threads=threads,
        )

    @staticmethod
    def ids(raw: Any) -> list[int]:
        return [int(r[2]) for r in raw]

    @staticmethod
    def batch_ids(raw: Any) -> list[list[int]]:
        """Row numbers per query in query order: ``batch_search`` returns its per-query
        lists in the order its threads finish, each tuple led by the query's id."""
        out: list[list[int]] = [[] for _ in raw]
        for rr in raw:
            if rr:
                out[int(rr[0][0])] = [int(r[2]) for r in rr]
        return out
