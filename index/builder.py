"""The build pipeline: forward index -> static pruning -> blocking -> summaries -> arrays.

Every input goes through a :class:`index.sources.CsrSource`, read twice chunk by chunk,
so a matrix in memory and Parquet shards on disk build the same index, bit for bit, and
the input never has to fit in memory as a whole (see :mod:`index.build_steps`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numba
import numpy as np

from index.block_max import build_block_max
from index.build_steps import (
    Forward,
    InputStats,
    SummaryParts,
    fill_forward,
    forward_parts,
    reordered_offsets,
    scan,
    summarize,
    threshold_bits,
)
from index.kernels.blocking import cluster_lists
from index.kernels.pruning import cap_lists, doc_top_terms, transpose_pruned
from index.kernels.reorder import locality_keys, renumber_blocks
from index.layout import BlockSummaries, ForwardIndex, IndexArrays, PostingLists
from index.sources import CsrSource
from index.storage import ArrayParts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildParams:
    """Build-time choices (Seismic's names).

    n_postings: average postings kept per term; the global budget is ``n_postings`` times
        the number of non-empty terms (``None`` keeps every posting).
    max_fraction: no list keeps more than ``max_fraction * n_postings`` postings.
    centroid_fraction: blocks per list = ``max(1, centroid_fraction * list length)``.
    min_cluster_size: clusters of at most this many documents are dissolved and their
        documents reassigned to the surviving centroids (0 keeps every cluster).
    summary_energy: share (alpha) of a block summary's mass kept.
    doc_cut: a document's heaviest terms used to assign it to a centroid.
    seed: makes the random centroids, hence the whole index, reproducible.
    """

    n_postings: int | None = 3500
    max_fraction: float = 1.5
    centroid_fraction: float = 0.1
    min_cluster_size: int = 2
    summary_energy: float = 0.4
    doc_cut: int = 15
    seed: int = 42

    def __post_init__(self) -> None:
        if self.n_postings is not None and (
            isinstance(self.n_postings, bool)
            or int(self.n_postings) != self.n_postings
            or self.n_postings <= 0
        ):
            raise ValueError(f"n_postings must be a positive int or None, got {self.n_postings!r}")
        if not self.max_fraction >= 1.0:
            raise ValueError(f"max_fraction must be >= 1, got {self.max_fraction!r}")
        if not 0.0 < self.centroid_fraction <= 1.0:
            raise ValueError(f"centroid_fraction must be in (0, 1], got {self.centroid_fraction!r}")
        if (
            isinstance(self.min_cluster_size, bool)
            or int(self.min_cluster_size) != self.min_cluster_size
            or self.min_cluster_size < 0
        ):
            raise ValueError(f"min_cluster_size must be an int >= 0, got {self.min_cluster_size!r}")
        if not 0.0 < self.summary_energy <= 1.0:
            raise ValueError(f"summary_energy must be in (0, 1], got {self.summary_energy!r}")
        if isinstance(self.doc_cut, bool) or int(self.doc_cut) != self.doc_cut or self.doc_cut < 1:
            raise ValueError(f"doc_cut must be a positive int, got {self.doc_cut!r}")
        if isinstance(self.seed, bool) or int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class _Clock:
    """Logs the seconds each build phase took (INFO level: a large build takes minutes)."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        log.info("build: %s took %.1f s", phase, now - self.last)
        self.last = now


def _smallest_uint(max_value: int) -> type:
    """uint16 when every value fits, else int32 (int64 offsets only past 2**31)."""
    if max_value < 2**16:
        return np.uint16
    if max_value < 2**31:
        return np.int32
    return np.int64


def _offset_dtype(max_value: int) -> type:
    return np.int32 if max_value < 2**31 else np.int64


@dataclass
class _Postings:
    """Pruned posting lists grouped into blocks (rows are input rows until renumbered)."""

    list_blocks: np.ndarray
    block_offsets: np.ndarray
    rows: np.ndarray
    doc_order: np.ndarray  # new document number -> input row


def _posting_lists(forward: Forward, stats: InputStats, params: BuildParams, n_chunks: int):
    """Statically pruned lists: the global budget, then the per-list cap."""
    df = stats.df
    dim = df.shape[0]
    if params.n_postings is None:
        threshold, cap = 0, int(df.max(initial=0))
    else:
        budget = int(params.n_postings) * int(np.count_nonzero(df))
        threshold = threshold_bits(stats.f16_histogram, budget)
        cap = max(1, int(params.max_fraction * params.n_postings))
    offsets, rows, bits = transpose_pruned(*forward.arrays, threshold, dim, n_chunks)
    if int(np.diff(offsets).max(initial=0)) > cap:
        offsets, rows, bits = cap_lists(offsets, rows, bits, cap)
    log.debug("pruned to %d postings (threshold bits %d, cap %d)", rows.shape[0], threshold, cap)
    return offsets, rows, bits


def _blocks(
    forward: Forward, offsets: np.ndarray, rows: np.ndarray, bits: np.ndarray,
    params: BuildParams, n_chunks: int, clock: _Clock,
) -> _Postings:  # fmt: skip
    """Blocking, compaction of empty blocks, and the document order for locality."""
    dim = offsets.shape[0] - 1
    n_docs = forward.offsets.shape[0] - 1
    lengths = np.diff(offsets)
    top_terms, top_bits, top_len = doc_top_terms(*forward.arrays, int(params.doc_cut))
    n_centroids = np.where(
        lengths > 0, np.maximum(1, (params.centroid_fraction * lengths).astype(np.int64)), 0
    ).astype(np.int64)
    block_base = np.concatenate([[0], np.cumsum(n_centroids)]).astype(np.int64)
    list_order = np.argsort(-lengths, kind="stable")[: int(np.count_nonzero(lengths))]
    grouped, block_sizes = cluster_lists(
        offsets, rows, bits, n_centroids, block_base, int(params.seed),
        int(params.min_cluster_size), list_order.astype(np.int64), n_chunks,
        *forward.arrays, top_terms, top_bits, top_len,
    )  # fmt: skip
    clock.mark("blocking")
    heaviest = np.where(top_len > 0, top_terms[:, 0], -1).astype(np.int32)
    del top_terms, top_bits, top_len
    keys = locality_keys(offsets, block_sizes, block_base, grouped, heaviest)
    doc_order = np.argsort(keys, kind="stable").astype(np.int64)
    del keys, heaviest
    if n_docs and doc_order.shape[0] != n_docs:
        raise AssertionError("document order lost rows")
    nonempty = block_sizes > 0
    list_of_block = np.repeat(np.arange(dim, dtype=np.int64), n_centroids)[nonempty]
    blocks_per_list = np.bincount(list_of_block, minlength=dim)
    if blocks_per_list.max(initial=0) > 1 << 24:
        raise ValueError("a posting list has more than 2**24 blocks; lower centroid_fraction")
    list_blocks = np.concatenate([[0], np.cumsum(blocks_per_list)]).astype(np.int64)
    block_offsets = np.concatenate([[0], np.cumsum(block_sizes[nonempty])]).astype(np.int64)
    return _Postings(list_blocks, block_offsets, grouped, doc_order)


def _joined(parts: list[np.ndarray], dtype: type, spare: int, stream: bool):
    """One array from consecutive ``parts`` (emptied as they are copied, so the peak is the
    result plus one part), or with ``stream`` an :class:`ArrayParts` that writes them as
    they are; ``spare`` zero values are appended."""
    length = sum(int(p.shape[0]) for p in parts) + spare
    if stream:

        def chunks():
            yield from (p.astype(dtype, copy=False) for p in parts)
            yield np.zeros(spare, dtype=dtype)

        return ArrayParts(np.dtype(dtype), length, chunks)
    out = np.zeros(length, dtype=dtype)
    pos = 0
    while parts:
        part = parts.pop(0)
        out[pos : pos + part.shape[0]] = part
        pos += part.shape[0]
    return out


def _summaries(parts: SummaryParts, term_dtype: type, stream: bool) -> BlockSummaries:
    """The summaries' arrays from the per-batch parts."""
    list_terms = np.concatenate([[0], np.cumsum(parts.n_unique)]).astype(np.int64)
    list_entries = np.concatenate([[0], np.cumsum(parts.n_entries)]).astype(np.int64)
    list_block_bytes = np.concatenate([[0], np.cumsum(parts.n_bytes)]).astype(np.int64)
    entries_dtype = np.uint16 if parts.n_entries.max(initial=0) < 1 << 16 else np.uint32
    return BlockSummaries(
        block_min=parts.block_min,
        block_scale=parts.block_scale,
        list_terms=list_terms,
        terms=_joined(parts.terms, term_dtype, 0, stream),
        term_entries=_joined(parts.term_entries, entries_dtype, 0, stream),
        list_entries=list_entries,
        codes=_joined(parts.codes, np.uint8, 0, stream),
        # 4 spare bytes: the reader loads 4 bytes at a time.
        entry_blocks=_joined(parts.entry_blocks, np.uint8, 4, stream),
        list_block_bytes=list_block_bytes,
    )


def build_arrays(source: CsrSource, params: BuildParams, stream: bool = False):
    """All arrays of a Seismic index over the rows of ``source``.

    Returns :class:`index.layout.IndexArrays`; with ``stream`` the forward index's
    entries and the summaries' largest arrays come as :class:`index.storage.ArrayParts`
    (for :func:`index.storage.save_arrays`), written part by part, never copied whole.
    """
    clock = _Clock()
    n_chunks = max(1, 4 * numba.get_num_threads())
    stats = scan(source)
    clock.mark(f"read pass 1 ({stats.n_rows} rows, {stats.nnz} non-zeros)")
    forward = fill_forward(source, stats)
    clock.mark("read pass 2 (forward index)")
    offsets, rows, bits = _posting_lists(forward, stats, params, n_chunks)
    clock.mark(f"static pruning ({rows.shape[0]} postings kept)")
    post = _blocks(forward, offsets, rows, bits, params, n_chunks, clock)
    del offsets, rows, bits
    dim = stats.n_cols
    term_dtype = _smallest_uint(dim - 1)
    parts = summarize(
        post.list_blocks, post.block_offsets, post.rows, forward,
        float(params.summary_energy), n_chunks, term_dtype,
    )  # fmt: skip
    n_entries = int(parts.n_entries.sum())
    summaries = _summaries(parts, term_dtype, stream)
    del parts
    clock.mark(f"summaries ({n_entries} entries)")
    new_of_old = np.empty(stats.n_rows, dtype=np.int32)
    new_of_old[post.doc_order] = np.arange(stats.n_rows, dtype=np.int32)
    renumber_blocks(post.rows, post.block_offsets, new_of_old)
    del new_of_old
    lists = PostingLists(
        list_blocks=post.list_blocks,
        block_offsets=post.block_offsets.astype(_offset_dtype(post.rows.shape[0])),
        postings=post.rows,
    )
    fwd = _forward(forward, post.doc_order, stream)
    clock.mark("forward index in document order")
    block_max = build_block_max(*forward.arrays, post.doc_order, dim, n_chunks)
    log.info("build: %.1f s in all", time.perf_counter() - clock.start)
    return IndexArrays(postings=lists, summaries=summaries, forward=fwd, block_max=block_max)


def _forward(forward: Forward, order: np.ndarray, stream: bool) -> ForwardIndex:
    """The forward index in the new document order: in memory, or as parts to write."""
    offsets = reordered_offsets(forward, order)
    doc_rows = order.astype(np.int32)
    split = forward.packed.shape[0] == 0
    nnz = int(offsets[-1])
    if stream:

        def part(k: int, dtype: type):
            return lambda: (p[k] for p in forward_parts(forward, order))

        u32, i32, u16 = np.dtype(np.uint32), np.dtype(np.int32), np.dtype(np.uint16)
        return ForwardIndex(
            offsets=offsets,
            packed=ArrayParts(u32, 0 if split else nnz, part(0, u32)),
            terms=ArrayParts(i32, nnz if split else 0, part(1, i32)),
            values=ArrayParts(u16, nnz if split else 0, part(2, u16)),
            doc_rows=doc_rows,
        )
    pieces = list(forward_parts(forward, order))

    def cat(k: int, dtype: type) -> np.ndarray:
        return np.concatenate([p[k] for p in pieces]) if pieces else np.empty(0, dtype)

    return ForwardIndex(
        offsets=offsets,
        packed=cat(0, np.uint32),
        terms=cat(1, np.int32),
        values=cat(2, np.uint16),
        doc_rows=doc_rows,
    )
