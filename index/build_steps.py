"""The build's steps, each bounded in memory: read the input twice (statistics, then the
forward index), then work from the forward index alone.

Memory in the order of the index itself: the forward index in input order (4 bytes a
non-zero below 65,536 terms), the kept postings, each document's top terms, and the
summaries; the summaries are computed list batch by list batch, and the final forward
index can be written part by part straight to its file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from index.kernels.reorder import gather_forward
from index.kernels.summaries import compact_batch, summarize_lists
from index.sources import CsrSource
from index.validation import MAX_WEIGHT

log = logging.getLogger(__name__)

# Upper bound, in summary entries, of one batch of lists (about 17 bytes an entry).
SUMMARY_BATCH = 1 << 24
# Documents per part when the final forward index is gathered.
FORWARD_PART_DOCS = 1 << 20


@dataclass
class InputStats:
    """What one pass over the input tells: per-term document frequencies, a histogram of
    the float16 bit patterns of all weights, and each row's length."""

    n_cols: int
    df: np.ndarray
    f16_histogram: np.ndarray
    row_lengths: np.ndarray

    @property
    def n_rows(self) -> int:
        return int(self.row_lengths.shape[0])

    @property
    def nnz(self) -> int:
        return int(self.row_lengths.sum())


def f16_bits(data: np.ndarray) -> np.ndarray:
    """float16 bit patterns (uint16) of non-negative float32 weights."""
    return data.astype(np.float16).view(np.uint16)


def scan(source: CsrSource) -> InputStats:
    """Pass 1 over the input."""
    dim = source.n_cols
    df = np.zeros(dim, dtype=np.int64)
    hist = np.zeros(1 << 16, dtype=np.int64)
    lengths = []
    for chunk in source.chunks():
        if chunk.nnz and float(chunk.data.max()) > MAX_WEIGHT:
            raise ValueError(f"docs has weights above {MAX_WEIGHT}, too large for float16 storage")
        df += np.bincount(chunk.indices, minlength=dim)
        hist += np.bincount(f16_bits(chunk.data), minlength=1 << 16)
        lengths.append(np.diff(chunk.indptr))
    row_lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    if row_lengths.shape[0] == 0:
        raise ValueError("docs has no rows")
    if row_lengths.shape[0] > np.iinfo(np.int32).max:
        raise ValueError("more than 2**31 - 1 documents")
    return InputStats(dim, df, hist, row_lengths.astype(np.int64))


@dataclass
class Forward:
    """A forward index in memory: ``offsets`` int64 (n+1,), and either ``packed`` uint32
    (term << 16 | float16 bits, when dim <= 65,536) or ``terms`` int32 + ``bits`` uint16
    (the unused form empty)."""

    offsets: np.ndarray
    packed: np.ndarray
    terms: np.ndarray
    bits: np.ndarray

    @property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.offsets, self.packed, self.terms, self.bits


def packs_terms(dim: int) -> bool:
    """Whether term ids fit the 16 bits beside the float16 weight."""
    return dim <= 1 << 16


def fill_forward(source: CsrSource, stats: InputStats) -> Forward:
    """Pass 2 over the input: the forward index in input row order."""
    offsets = np.zeros(stats.n_rows + 1, dtype=np.int64)
    np.cumsum(stats.row_lengths, out=offsets[1:])
    nnz = int(offsets[-1])
    packed_layout = packs_terms(stats.n_cols)
    packed = np.empty(nnz if packed_layout else 0, dtype=np.uint32)
    terms = np.empty(0 if packed_layout else nnz, dtype=np.int32)
    bits = np.empty(0 if packed_layout else nnz, dtype=np.uint16)
    pos = 0
    row = 0
    for chunk in source.chunks():
        end = pos + chunk.nnz
        if row + chunk.n_rows > stats.n_rows or end != offsets[row + chunk.n_rows]:
            raise ValueError("the input changed between the two passes of the build")
        if packed_layout:
            np.left_shift(chunk.indices.astype(np.uint32), 16, out=packed[pos:end])
            packed[pos:end] |= f16_bits(chunk.data)
        else:
            terms[pos:end] = chunk.indices
            bits[pos:end] = f16_bits(chunk.data)
        pos = end
        row += chunk.n_rows
    if row != stats.n_rows:
        raise ValueError("the input changed between the two passes of the build")
    return Forward(offsets, packed, terms, bits)


def threshold_bits(histogram: np.ndarray, budget: int) -> int:
    """float16 bit pattern of the ``budget``-th largest weight (0 when all fit): keeping
    every weight at or above it keeps at least ``budget`` postings, ties included."""
    if int(histogram.sum()) <= budget:
        return 0
    from_top = np.cumsum(histogram[::-1])
    return int(histogram.shape[0] - 1 - np.searchsorted(from_top, budget))


@dataclass
class SummaryParts:
    """The transposed summaries of all lists, in list order, as per-batch parts."""

    terms: list[np.ndarray]
    term_entries: list[np.ndarray]
    codes: list[np.ndarray]
    entry_blocks: list[np.ndarray]
    n_unique: np.ndarray
    n_entries: np.ndarray
    n_bytes: np.ndarray
    block_min: np.ndarray
    block_scale: np.ndarray


def summarize(
    list_blocks: np.ndarray,
    block_offsets: np.ndarray,
    rows: np.ndarray,
    forward: Forward,
    alpha: float,
    n_chunks: int,
    term_dtype: type,
) -> SummaryParts:
    """Block summaries of every list, computed in batches of lists whose summed upper
    bound (each block's total non-zeros, at most dim) fits :data:`SUMMARY_BATCH`."""
    dim = list_blocks.shape[0] - 1
    n_blocks = block_offsets.shape[0] - 1
    per_block = np.zeros(n_blocks, dtype=np.int64)
    if rows.shape[0]:
        row_nnz = np.diff(forward.offsets).astype(np.int32)
        starts = block_offsets[:-1].astype(np.int64)
        per_block = np.add.reduceat(row_nnz[rows], starts, dtype=np.int64)
        del row_nnz
        per_block[np.diff(block_offsets) == 0] = 0
        np.minimum(per_block, dim, out=per_block)
    block_bound = np.concatenate([[0], np.cumsum(per_block)])
    list_bound = block_bound[list_blocks[1:]] - block_bound[list_blocks[:-1]]
    out = SummaryParts(
        [], [], [], [],
        np.zeros(dim, dtype=np.int64), np.zeros(dim, dtype=np.int64), np.zeros(dim, dtype=np.int64),
        np.zeros(n_blocks, dtype=np.float32), np.zeros(n_blocks, dtype=np.float32),
    )  # fmt: skip
    lists = np.flatnonzero(np.diff(list_blocks) > 0).astype(np.int64)
    ends = np.cumsum(list_bound[lists])
    start = 0
    while start < lists.shape[0]:
        base = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + SUMMARY_BATCH, side="right")))
        batch = lists[start:stop]
        region = np.concatenate([[0], np.cumsum(list_bound[batch])]).astype(np.int64)
        size = int(region[-1])
        o_terms = np.empty(size, dtype=np.int32)
        o_entries = np.empty(size, dtype=np.uint32)
        o_codes = np.empty(size, dtype=np.uint8)
        o_blocks = np.empty(size, dtype=np.int32)
        n_e = np.zeros(batch.shape[0], dtype=np.int64)
        n_u = np.zeros(batch.shape[0], dtype=np.int64)
        summarize_lists(
            batch, list_blocks, block_offsets, rows, *forward.arrays, float(alpha), dim,
            region, n_chunks, o_terms, o_entries, o_codes, o_blocks, n_e, n_u,
            out.block_min, out.block_scale,
        )  # fmt: skip
        terms = np.empty(int(n_u.sum()), dtype=np.int32)
        term_entries = np.empty(int(n_u.sum()), dtype=np.uint32)
        codes = np.empty(int(n_e.sum()), dtype=np.uint8)
        widths = np.maximum(1, np.ceil(np.log2(np.maximum(np.diff(list_blocks)[batch], 1))))
        entry_blocks = np.zeros(int(((widths.astype(np.int64) * n_e + 7) // 8).sum()), np.uint8)
        n_y = np.zeros(batch.shape[0], dtype=np.int64)
        compact_batch(
            batch, list_blocks, region, n_e, n_u, o_terms, o_entries, o_codes, o_blocks,
            terms, term_entries, codes, entry_blocks, n_y,
        )  # fmt: skip
        del o_terms, o_entries, o_codes, o_blocks
        out.terms.append(terms.astype(term_dtype))
        out.term_entries.append(term_entries)
        out.codes.append(codes)
        out.entry_blocks.append(entry_blocks)
        out.n_unique[batch] = n_u
        out.n_entries[batch] = n_e
        out.n_bytes[batch] = n_y
        start = stop
    return out


def forward_parts(forward: Forward, order: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """The forward index re-ordered (new row ``i`` = old row ``order[i]``), in parts of
    :data:`FORWARD_PART_DOCS` documents: ``(packed, terms, bits)`` each (unused ones empty)."""
    lengths = np.diff(forward.offsets)[order]
    new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    split = forward.packed.shape[0] == 0
    for a in range(0, order.shape[0], FORWARD_PART_DOCS):
        b = min(order.shape[0], a + FORWARD_PART_DOCS)
        n = int(new_offsets[b] - new_offsets[a])
        packed = np.empty(0 if split else n, dtype=np.uint32)
        terms = np.empty(n if split else 0, dtype=np.int32)
        bits = np.empty(n if split else 0, dtype=np.uint16)
        gather_forward(
            *forward.arrays, order[a:b], int(new_offsets[a]), new_offsets[a : b + 1],
            packed, terms, bits,
        )  # fmt: skip
        yield packed, terms, bits


def reordered_offsets(forward: Forward, order: np.ndarray) -> np.ndarray:
    """Offsets of the forward index re-ordered by ``order`` (see :func:`forward_parts`)."""
    lengths = np.diff(forward.offsets)[order]
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
