"""The Seismic query algorithm over the three parts of an index (:mod:`index.layout`).

Per query: scatter it into a dense vector; score all blocks of the posting lists of its
``query_cut`` heaviest terms from the transposed quantised summaries; visit the blocks
either best-first over all those lists together (``global_order``), or as the Rust
Seismic does: the heaviest term's list best-first, then the other lists one by one with
their blocks in stored order. A block is skipped when its summary score is below
``heap_factor * heap_min`` once the heap is full (Seismic's rule: summaries
under-estimate, so ``heap_factor`` < 1 leaves slack, and 0 never skips). Every unseen
document of a visited block is scored exactly from the forward index; a bitset (small
enough to stay in cache) marks the documents seen.

Documents are scored through a two-group software pipeline (:func:`_enqueue`): a new
document's forward row is prefetched, every cache line of it, into the *next* group;
once that group has asked for ``_LINE_BUDGET`` lines, the *current* group, whose lines
were asked for one group earlier and have arrived meanwhile, is scored, and the groups
swap. The budget counts cache lines, not documents, so the number of misses in flight
stays the same for short and long documents, within what every x86-64 core can track.
Scores reach the heap at most one group late: block skipping then sees a slightly older
``heap_min`` (it never skips more).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from index.kernels.block_scores import list_block_scores, prefetch_list_terms
from index.kernels.bounds import certify_one, exact_one, scan_one
from index.kernels.forward import forward_dot, prefetch_row
from index.kernels.heap import heap_drain, heap_push, max_heap_pop, max_heapify
from index.kernels.jit import leaf
from index.kernels.scratch import (
    GROUP,
    N_STATS,
    STAT_BLOCKS,
    STAT_DOCS,
    STAT_LISTS,
    STAT_SUMMARIES,
    SearchScratch,
    make_scratch,
)

__all__ = ["N_STATS", "SearchScratch", "make_scratch", "search_batch", "search_serial"]

# Cache lines prefetched into the next pipeline group before the current one is scored
# (measured on AMD Zen 4 and Intel Emerald Rapids: 32-64 lines are within a few percent
# of each other on rows of 30 and 130 entries; the old per-document ring with fixed lags
# was 1.5-2.5x slower per document on the Intel core).
_LINE_BUDGET = 48
# What search_serial / search_batch run per query (``mode``), and what certification
# does (``certify``): nothing, check with an early exit, or check fully (explain).
MODE_APPROX = 0
MODE_EXACT = 1
CERTIFY_OFF = 0
CERTIFY_CHECK = 1
CERTIFY_EXPLAIN = 2


@leaf
def _score_group(
    g: int,
    n: int,
    forward,
    scratch: SearchScratch,
    heap_scores: np.ndarray,
    heap_rows: np.ndarray,
    size: int,
) -> int:
    """Score the ``n`` documents of pipeline group ``g`` and offer them to the heap;
    returns the heap size."""
    dense = scratch.dense
    starts = scratch.group_starts
    ends = scratch.group_ends
    docs = scratch.group_docs
    packed = forward.packed
    terms = forward.terms
    bits = forward.values
    doc_rows = forward.doc_rows
    k = heap_scores.shape[0]
    base = g * GROUP
    for i in range(base, base + n):
        s = forward_dot(dense, packed, terms, bits, starts[i], ends[i])
        # Ties are broken on the caller's rows: look them up only for documents that may
        # enter the heap.
        if size < k or s >= heap_scores[0]:
            size = heap_push(heap_scores, heap_rows, size, s, doc_rows[docs[i]])
    return size


@leaf
def _enqueue(
    p0: int,
    p1: int,
    lists,
    forward,
    allowed: np.ndarray,
    scratch: SearchScratch,
    heap_scores: np.ndarray,
    heap_rows: np.ndarray,
    size: int,
    n_words: int,
) -> tuple[int, int]:
    """Feed the unseen (and allowed) documents of postings ``[p0, p1)`` to the pipeline.

    Returns the heap size and the number of touched bitset words.
    """
    postings = lists.postings
    offsets = forward.offsets
    packed = forward.packed
    terms = forward.terms
    bits = forward.values
    doc_rows = forward.doc_rows
    seen = scratch.seen
    seen_words = scratch.seen_words
    docs = scratch.group_docs
    starts = scratch.group_starts
    ends = scratch.group_ends
    pipe = scratch.pipe
    filtered = allowed.shape[0] > 0
    cur = pipe[0]
    n_cur = pipe[1]
    n_next = pipe[2]
    lines = pipe[3]
    n_new = 0
    for p in range(p0, p1):
        r = postings[p]
        w = r >> 6
        bit = np.uint64(1) << np.uint64(r & 63)
        word = seen[w]
        if word & bit:
            continue
        if word == 0:
            seen_words[n_words] = w
            n_words += 1
        seen[w] = word | bit
        if filtered and allowed[doc_rows[r]] == 0:
            continue
        a = offsets[r]
        e = offsets[r + 1]
        lines += prefetch_row(packed, terms, bits, a, e)
        slot = (1 - cur) * GROUP + n_next
        docs[slot] = r
        starts[slot] = a
        ends[slot] = e
        n_next += 1
        n_new += 1
        if lines >= _LINE_BUDGET or n_next == GROUP:
            size = _score_group(cur, n_cur, forward, scratch, heap_scores, heap_rows, size)
            cur = 1 - cur
            n_cur = n_next
            n_next = 0
            lines = 0
    pipe[0] = cur
    pipe[1] = n_cur
    pipe[2] = n_next
    pipe[3] = lines
    scratch.stats[STAT_DOCS] += n_new
    return size, n_words


@leaf
def _drain(
    forward, scratch: SearchScratch, heap_scores: np.ndarray, heap_rows: np.ndarray, size: int
) -> int:
    """Score both pipeline groups and empty the pipeline; returns the heap size."""
    pipe = scratch.pipe
    cur = pipe[0]
    size = _score_group(cur, pipe[1], forward, scratch, heap_scores, heap_rows, size)
    size = _score_group(1 - cur, pipe[2], forward, scratch, heap_scores, heap_rows, size)
    pipe[:] = 0
    return size


@leaf
def _walk_best_first(
    nc: int,
    heap_factor: float,
    lists,
    forward,
    allowed: np.ndarray,
    scratch: SearchScratch,
    heap_scores: np.ndarray,
    heap_rows: np.ndarray,
    size: int,
    n_words: int,
) -> tuple[int, int]:
    """Visit the ``nc`` candidate blocks (``cand_scores`` / ``cand_blocks``) best-first;
    once the heap is full, the first block scoring below ``heap_factor * heap_min`` ends
    the walk (every later one scores lower still)."""
    cand_s = scratch.cand_scores
    cand_b = scratch.cand_blocks
    block_offsets = lists.block_offsets
    k = heap_scores.shape[0]
    max_heapify(cand_s, cand_b, nc)
    while nc > 0:
        s = cand_s[0]
        b = cand_b[0]
        if size == k and s < heap_factor * heap_scores[0]:
            break
        nc = max_heap_pop(cand_s, cand_b, nc)
        scratch.stats[STAT_BLOCKS] += 1
        size, n_words = _enqueue(
            block_offsets[b],
            block_offsets[b + 1],
            lists,
            forward,
            allowed,
            scratch,
            heap_scores,
            heap_rows,
            size,
            n_words,
        )
    return size, n_words


@njit(cache=True, nogil=True)
def search_one(
    q_terms: np.ndarray,
    q_vals: np.ndarray,
    query_cut: int,
    heap_factor: float,
    global_order: bool,
    lists,
    summaries,
    forward,
    block_max,
    allowed: np.ndarray,
    certify: int,
    scratch: SearchScratch,
    heap_scores: np.ndarray,
    heap_rows: np.ndarray,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
    cert_out: np.ndarray,
) -> None:
    """Approximate top-k for one query: ``q_terms`` int32 ascending, ``q_vals`` float32 > 0.

    ``lists`` / ``summaries`` / ``forward`` / ``block_max``: the parts of the index
    (:mod:`index.layout`). ``allowed`` uint8 (n_docs,) masks caller rows out where 0
    (length 0: no filter). ``heap_scores`` float32 / ``heap_rows`` int64 (k,) scratch.
    Results go to ``out_rows`` int64 / ``out_scores`` float32 (k,), best first, ties to
    the lower row, padded with -1 / 0.0. With ``certify`` (``CERTIFY_CHECK`` or
    ``CERTIFY_EXPLAIN``, needs a block-max index) ``cert_out`` float64 (3,) receives
    1.0 if the answer is certified exact (else 0.0), the bound on unscored documents
    (:func:`index.kernels.bounds.certify_one`) and the k-th score (-inf if fewer hits).
    """
    dense = scratch.dense
    block_scores = scratch.block_scores
    cand_s = scratch.cand_scores
    cand_b = scratch.cand_blocks
    stats = scratch.stats
    list_blocks = lists.list_blocks
    block_offsets = lists.block_offsets
    nq = q_terms.shape[0]
    for j in range(nq):
        dense[q_terms[j]] = q_vals[j]
    order = np.argsort(-q_vals, kind="mergesort")
    n_cut = min(query_cut, nq)
    for ci in range(n_cut):
        prefetch_list_terms(q_terms[order[ci]], summaries)
    matches = np.empty(2 * nq, dtype=np.int64)
    size = 0
    n_words = 0
    k = heap_scores.shape[0]
    nc = 0
    for ci in range(n_cut):
        t = q_terms[order[ci]]
        b0 = list_blocks[t]
        nb = list_block_scores(
            t, q_terms, q_vals, lists, summaries, block_scores, scratch.block_qsum, matches
        )
        stats[STAT_SUMMARIES] += nb
        stats[STAT_LISTS] += 1
        if not global_order and ci > 0:
            # Seismic's loop after the first list: blocks in list order, each skipped
            # when its summary score is below heap_factor * heap_min at that moment.
            for b in range(nb):
                if size == k and block_scores[b] < heap_factor * heap_scores[0]:
                    continue
                stats[STAT_BLOCKS] += 1
                size, n_words = _enqueue(
                    block_offsets[b0 + b],
                    block_offsets[b0 + b + 1],
                    lists,
                    forward,
                    allowed,
                    scratch,
                    heap_scores,
                    heap_rows,
                    size,
                    n_words,
                )
            continue
        thr = -np.inf
        if size == k:
            thr = heap_factor * heap_scores[0]
        for b in range(nb):
            if block_scores[b] >= thr:
                cand_s[nc] = block_scores[b]
                cand_b[nc] = b0 + b
                nc += 1
        if not global_order:
            size, n_words = _walk_best_first(
                nc, heap_factor, lists, forward, allowed, scratch, heap_scores, heap_rows, size,
                n_words,
            )  # fmt: skip
    if global_order:
        size, n_words = _walk_best_first(
            nc, heap_factor, lists, forward, allowed, scratch, heap_scores, heap_rows, size,
            n_words,
        )  # fmt: skip
    size = _drain(forward, scratch, heap_scores, heap_rows, size)
    full = size == k
    theta = np.float64(heap_scores[0]) if full else -np.inf
    theta_row = heap_rows[0] if full else -1
    heap_drain(heap_scores, heap_rows, size, out_rows, out_scores)
    if certify != CERTIFY_OFF:
        ok, bound = certify_one(
            q_terms, q_vals, block_max, forward, allowed, scratch, full, theta, theta_row,
            certify == CERTIFY_CHECK,
        )  # fmt: skip
        cert_out[0] = 1.0 if ok else 0.0
        cert_out[1] = bound
        cert_out[2] = theta
    for j in range(nq):
        dense[q_terms[j]] = 0.0
    seen = scratch.seen
    for i in range(n_words):
        seen[scratch.seen_words[i]] = 0


@njit(cache=True, nogil=True)
def search_serial(
    q_indptr: np.ndarray,
    q_indices: np.ndarray,
    q_data: np.ndarray,
    query_cut: int,
    heap_factor: float,
    global_order: bool,
    mode: int,
    certify: int,
    lists,
    summaries,
    forward,
    block_max,
    allowed: np.ndarray,
    scratch: SearchScratch,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
    cert_out: np.ndarray,
) -> None:
    """Queries (CSR int64 / int32 / float32) one after another on the caller's thread with
    the caller's scratch; ``out_*`` (n_queries, k), ``cert_out`` float64 (n_queries, 3).
    ``mode`` ``MODE_APPROX``: :func:`search_one` (with ``certify``); ``MODE_EXACT``: exact
    top-k by block-max bounds (:func:`index.kernels.bounds.exact_one`), or by scoring
    every document when the index has no block-max index."""
    k = out_rows.shape[1]
    heap_scores = np.empty(k, dtype=np.float32)
    heap_rows = np.empty(k, dtype=np.int64)
    bounded = block_max.range_size[0] > 0
    for q in range(q_indptr.shape[0] - 1):
        a = q_indptr[q]
        b = q_indptr[q + 1]
        if mode == MODE_EXACT and bounded:
            exact_one(
                q_indices[a:b], q_data[a:b], block_max, forward, allowed, scratch,
                heap_scores, heap_rows, out_rows[q], out_scores[q],
            )  # fmt: skip
        elif mode == MODE_EXACT:
            scan_one(
                q_indices[a:b], q_data[a:b], forward, allowed, scratch, heap_scores,
                heap_rows, out_rows[q], out_scores[q],
            )  # fmt: skip
        else:
            search_one(
                q_indices[a:b], q_data[a:b], query_cut, heap_factor, global_order, lists,
                summaries, forward, block_max, allowed, certify, scratch, heap_scores,
                heap_rows, out_rows[q], out_scores[q], cert_out[q],
            )  # fmt: skip


@njit(cache=True, nogil=True, parallel=True)
def search_batch(
    q_indptr: np.ndarray,
    q_indices: np.ndarray,
    q_data: np.ndarray,
    query_cut: int,
    heap_factor: float,
    global_order: bool,
    mode: int,
    certify: int,
    lists,
    summaries,
    forward,
    block_max,
    allowed: np.ndarray,
    dim: int,
    max_blocks: int,
    max_cand: int,
    n_chunks: int,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
    cert_out: np.ndarray,
    stats: np.ndarray,
) -> None:
    """All queries, ``n_chunks`` contiguous chunks in parallel (``prange``); each chunk
    allocates its scratch once and reuses it for its queries (see :func:`search_serial`).
    ``stats`` int64 (n_chunks, N_STATS) receives each chunk's counters."""
    nq = q_indptr.shape[0] - 1
    n_docs = forward.offsets.shape[0] - 1
    n_ranges = 0
    if block_max.range_size[0] > 0:
        n_ranges = (n_docs + block_max.range_size[0] - 1) // block_max.range_size[0]
    per = (nq + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        start = c * per
        stop = min(nq, start + per)
        if start >= stop:
            continue
        scratch = make_scratch(dim, n_docs, max_blocks, max_cand, n_ranges)
        search_serial(
            q_indptr[start : stop + 1], q_indices, q_data, query_cut, heap_factor,
            global_order, mode, certify, lists, summaries, forward, block_max, allowed,
            scratch, out_rows[start:stop], out_scores[start:stop], cert_out[start:stop],
        )  # fmt: skip
        stats[c, :] = scratch.stats
