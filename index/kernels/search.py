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

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from index.kernels.block_scores import list_block_scores, prefetch_list_terms
from index.kernels.forward import forward_dot, prefetch_row
from index.kernels.heap import heap_drain, heap_push
from index.kernels.jit import leaf

# Documents per pipeline group, and cache lines prefetched into the next group before the
# current one is scored (measured on AMD Zen 4 and Intel Emerald Rapids: 32-64 lines are
# within a few percent of each other on rows of 30 and 130 entries; the old per-document
# ring with fixed lags was 1.5-2.5x slower per document on the Intel core).
GROUP = 64
_LINE_BUDGET = 48
# stats: documents scored, blocks visited, blocks whose summaries were scored, lists walked.
N_STATS = 4


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
    stats: int64 (N_STATS,): counters added to by every query (see ``N_STATS``).
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


@njit(cache=True, nogil=True)
def make_scratch(dim: int, n_docs: int, max_blocks: int, max_cand: int) -> SearchScratch:
    """Fresh :class:`SearchScratch` for an index of ``dim`` terms and ``n_docs`` documents."""
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
    )


@leaf
def _sift_down_max(keys: np.ndarray, vals: np.ndarray, i: int, n: int) -> None:
    """Max-heap sift-down on ``keys`` float32 with payload ``vals`` int32."""
    key = keys[i]
    val = vals[i]
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and keys[child + 1] > keys[child]:
            child += 1
        if keys[child] > key:
            keys[i] = keys[child]
            vals[i] = vals[child]
            i = child
        else:
            break
    keys[i] = key
    vals[i] = val


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
    scratch.stats[0] += n_new
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
    for i in range(nc // 2 - 1, -1, -1):
        _sift_down_max(cand_s, cand_b, i, nc)
    while nc > 0:
        s = cand_s[0]
        b = cand_b[0]
        if size == k and s < heap_factor * heap_scores[0]:
            break
        nc -= 1
        cand_s[0] = cand_s[nc]
        cand_b[0] = cand_b[nc]
        _sift_down_max(cand_s, cand_b, 0, nc)
        scratch.stats[1] += 1
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
    allowed: np.ndarray,
    scratch: SearchScratch,
    heap_scores: np.ndarray,
    heap_rows: np.ndarray,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> None:
    """Approximate top-k for one query: ``q_terms`` int32 ascending, ``q_vals`` float32 > 0.

    ``lists`` / ``summaries`` / ``forward``: the parts of the index (:mod:`index.layout`).
    ``allowed`` uint8 (n_docs,) masks caller rows out where 0 (length 0: no filter).
    ``heap_scores`` float32 / ``heap_rows`` int64 (k,) scratch. Results go to
    ``out_rows`` int64 / ``out_scores`` float32 (k,), best first, ties to the lower row,
    padded with -1 / 0.0.
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
        stats[2] += nb
        stats[3] += 1
        if not global_order and ci > 0:
            # Seismic's loop after the first list: blocks in list order, each skipped
            # when its summary score is below heap_factor * heap_min at that moment.
            for b in range(nb):
                if size == k and block_scores[b] < heap_factor * heap_scores[0]:
                    continue
                stats[1] += 1
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
    heap_drain(heap_scores, heap_rows, size, out_rows, out_scores)
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
    lists,
    summaries,
    forward,
    allowed: np.ndarray,
    scratch: SearchScratch,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> None:
    """Queries (CSR int64 / int32 / float32) one after another on the caller's thread with
    the caller's scratch (see :func:`search_one`); ``out_*`` (n_queries, k)."""
    k = out_rows.shape[1]
    heap_scores = np.empty(k, dtype=np.float32)
    heap_rows = np.empty(k, dtype=np.int64)
    for q in range(q_indptr.shape[0] - 1):
        a = q_indptr[q]
        b = q_indptr[q + 1]
        search_one(
            q_indices[a:b],
            q_data[a:b],
            query_cut,
            heap_factor,
            global_order,
            lists,
            summaries,
            forward,
            allowed,
            scratch,
            heap_scores,
            heap_rows,
            out_rows[q],
            out_scores[q],
        )


@njit(cache=True, nogil=True, parallel=True)
def search_batch(
    q_indptr: np.ndarray,
    q_indices: np.ndarray,
    q_data: np.ndarray,
    query_cut: int,
    heap_factor: float,
    global_order: bool,
    lists,
    summaries,
    forward,
    allowed: np.ndarray,
    dim: int,
    max_blocks: int,
    max_cand: int,
    n_chunks: int,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
    stats: np.ndarray,
) -> None:
    """All queries, ``n_chunks`` contiguous chunks in parallel (``prange``); each chunk
    allocates its scratch once and reuses it for its queries. ``stats`` int64
    (n_chunks, N_STATS) receives each chunk's counters."""
    nq = q_indptr.shape[0] - 1
    n_docs = forward.offsets.shape[0] - 1
    per = (nq + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        start = c * per
        stop = min(nq, start + per)
        if start >= stop:
            continue
        scratch = make_scratch(dim, n_docs, max_blocks, max_cand)
        search_serial(
            q_indptr[start : stop + 1],
            q_indices,
            q_data,
            query_cut,
            heap_factor,
            global_order,
            lists,
            summaries,
            forward,
            allowed,
            scratch,
            out_rows[start:stop],
            out_scores[start:stop],
        )
        stats[c, :] = scratch.stats
