"""One thread's search buffers, shared by the approximate search (:mod:`.search`) and the
bound-based exact search and certification (:mod:`.bounds`)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

# Documents per pipeline group of the approximate search (see index.kernels.search).
GROUP = 64

# Counters every query adds to ``SearchScratch.stats``.
STAT_DOCS = 0  # documents scored from the forward index
STAT_BLOCKS = 1  # blocks visited (approximate search)
STAT_SUMMARIES = 2  # blocks whose summaries were scored
STAT_LISTS = 3  # posting lists walked
STAT_PAIRS = 4  # (term, range) block-max pairs read for bounds
STAT_RANGES = 5  # ranges scored (exact mode) or checked (certification)
STAT_VERIFIED = 6  # unscored documents scored to certify an answer
N_STATS = 7


class SearchScratch(NamedTuple):
    """One thread's search buffers, reused across queries; zeroed ones are left zeroed.

    dense: float32 (dim,) zeroed: the query scattered.
    seen: uint64 (n_docs // 64 + 1,) zeroed: bitset of documents already scored.
    seen_words: int32 (same,): which words of ``seen`` were touched.
    block_scores, block_qsum: float32 (max blocks per list,).
    cand_scores: float32, cand_blocks: int32 (candidate capacity,): the best-first walk.
    group_docs: int32, group_starts, group_ends: int64 (2 * GROUP,): the pipeline's two
        groups of documents and their forward-index ranges.
    pipe: int64 (4,) zeroed: current group, its size, the next group's size and lines.
    stats: int64 (N_STATS,): counters added to by every query (see ``STAT_*``).
    range_bounds: float32 (n_ranges,) zeroed: block-max bounds of the query per range.
    range_keys: float64, range_ids: int32 (n_ranges,): the best-first queue of ranges.
    """

    dense: np.ndarray
    seen: np.ndarray
    seen_words: np.ndarray
    block_scores: np.ndarray
    block_qsum: np.ndarray
    cand_scores: np.ndarray
    cand_blocks: np.ndarray
    group_docs: np.ndarray
    group_starts: np.ndarray
    group_ends: np.ndarray
    pipe: np.ndarray
    stats: np.ndarray
    range_bounds: np.ndarray
    range_keys: np.ndarray
    range_ids: np.ndarray


@njit(cache=True, nogil=True)
def make_scratch(
    dim: int, n_docs: int, max_blocks: int, max_cand: int, n_ranges: int
) -> SearchScratch:
    """Fresh :class:`SearchScratch` for an index of ``dim`` terms, ``n_docs`` documents and
    ``n_ranges`` block-max ranges (0 without a block-max index)."""
    n_words = n_docs // 64 + 1
    return SearchScratch(
        np.zeros(dim, dtype=np.float32),
        np.zeros(n_words, dtype=np.uint64),
        np.empty(n_words, dtype=np.int32),
        np.empty(max(1, max_blocks), dtype=np.float32),
        np.empty(max(1, max_blocks), dtype=np.float32),
        np.empty(max(1, max_cand), dtype=np.float32),
        np.empty(max(1, max_cand), dtype=np.int32),
        np.empty(2 * GROUP, dtype=np.int32),
        np.empty(2 * GROUP, dtype=np.int64),
        np.empty(2 * GROUP, dtype=np.int64),
        np.zeros(4, dtype=np.int64),
        np.zeros(N_STATS, dtype=np.int64),
        np.zeros(max(1, n_ranges), dtype=np.float32),
        np.empty(max(1, n_ranges), dtype=np.float64),
        np.empty(max(1, n_ranges), dtype=np.int32),
    )
