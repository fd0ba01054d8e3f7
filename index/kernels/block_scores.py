"""Query-time scoring of block summaries: one pass over a list's transposed summaries
gives every block of the list an estimate of its best document's score."""

from __future__ import annotations

import numpy as np

from index.kernels.intrinsics import prefetch
from index.kernels.jit import leaf
from index.kernels.summaries import id_bits


@leaf
def prefetch_list_terms(t: int, summaries) -> None:
    """Prefetch the summary terms of list ``t`` and their entry offsets, which the binary
    searches of :func:`list_block_scores` would otherwise miss on one by one."""
    lo = summaries.list_terms[t]
    hi = summaries.list_terms[t + 1]
    for j in range(lo, hi, 64 // summaries.terms.itemsize):
        prefetch(summaries.terms, j)
    for j in range(lo, hi, 64 // summaries.term_entries.itemsize):
        prefetch(summaries.term_entries, j)


@leaf
def list_block_scores(
    t: int,
    q_terms: np.ndarray,
    q_vals: np.ndarray,
    lists,
    summaries,
    scores: np.ndarray,
    qsum: np.ndarray,
    matches: np.ndarray,
) -> int:
    """Summary score of every block of list ``t`` into ``scores`` float32; returns the
    list's block count.

    ``q_terms`` int32 ascending, ``q_vals`` float32: the query. ``lists`` and
    ``summaries``: :class:`index.layout.PostingLists` / :class:`~index.layout.BlockSummaries`.
    Scratch: ``qsum`` float32 (max blocks per list,), ``matches`` int64 (2 * query length,).
    Two passes: find the list's entries of every query term and prefetch them, then
    accumulate them: the entries of different terms lie far apart, and this way their
    misses overlap. A block's score is ``sum_t q_t * (min + scale * code_t)``.
    """
    b0 = lists.list_blocks[t]
    nb = lists.list_blocks[t + 1] - b0
    scores[:nb] = 0.0
    qsum[:nb] = 0.0
    e_base = summaries.list_entries[t]
    n_entries = summaries.list_entries[t + 1] - e_base
    y_base = summaries.list_block_bytes[t]
    width = id_bits(nb)
    mask = (np.int64(1) << width) - 1
    terms = summaries.terms
    term_entries = summaries.term_entries
    entry_blocks = summaries.entry_blocks
    codes = summaries.codes
    # Query terms and the list's summary terms are both ascending: a moving binary search.
    lo = summaries.list_terms[t]
    hi = summaries.list_terms[t + 1]
    n_m = 0
    for j in range(q_terms.shape[0]):
        if lo >= hi:
            break
        u = q_terms[j]
        idx = lo + np.searchsorted(terms[lo:hi], u)
        if idx < hi and terms[idx] == u:
            e0 = np.int64(term_entries[idx])
            prefetch(codes, e_base + e0)
            prefetch(entry_blocks, y_base + ((e0 * width) >> 3))
            matches[n_m] = j
            matches[n_m + 1] = idx
            n_m += 2
            lo = idx + 1
        else:
            lo = idx
    for i in range(0, n_m, 2):
        v = q_vals[matches[i]]
        idx = matches[i + 1]
        e0 = np.int64(term_entries[idx])
        e1 = np.int64(term_entries[idx + 1]) if idx + 1 < hi else n_entries
        for e in range(e0, e1):
            pos = e * width
            y = y_base + (pos >> 3)
            x = np.int64(entry_blocks[y]) | (np.int64(entry_blocks[y + 1]) << 8)
            x |= (np.int64(entry_blocks[y + 2]) << 16) | (np.int64(entry_blocks[y + 3]) << 24)
            b = (x >> (pos & 7)) & mask
            scores[b] += v * np.float32(codes[e_base + e])
            qsum[b] += v
    block_min = summaries.block_min
    block_scale = summaries.block_scale
    for b in range(nb):
        scores[b] = block_min[b0 + b] * qsum[b] + block_scale[b0 + b] * scores[b]
    return nb
