"""The Seismic query algorithm over the arrays of :class:`index.SeismicIndex`.

Per query: scatter it into a dense vector; score all blocks of the posting lists of its
``query_cut`` heaviest terms from the transposed quantised summaries; visit the blocks
either best-first over all those lists together (``global_order``), or as the Rust
Seismic does: the heaviest term's list best-first, then the other lists one by one with
their blocks in stored order; a block is skipped when its summary score is below
``heap_factor * heap_min`` once the heap is full (Seismic's rule: summaries
under-estimate, so ``heap_factor`` < 1 leaves slack, and 0 never skips); score each
unseen document exactly from the forward index. Documents are marked in a bitset
(small enough to stay in cache) and scored through a short software pipeline that
prefetches their forward rows ahead, so that the cache misses of many documents overlap.

``ix`` is the tuple of index arrays built by ``SeismicIndex._kernel_arrays``:
``(list_blocks, block_docs, postings, block_min, block_scale, list_sterms, sterm,
sterm_entries, sentry_block, sentry_code, fwd_offsets, fwd_packed, fwd_terms, fwd_bits,
row_ids, list_entries, list_block_bytes)``: each list's summary entries are stored
term-major; ``sterm_entries`` holds each unique term's first entry relative to the
list's first entry ``list_entries[t]``, and ``sentry_block`` the entries' list-local
block ids bit-packed with ``id_bits(blocks of the list)`` bits each, from byte
``list_block_bytes[t]``. The forward index is either ``fwd_packed`` uint32 (term << 16 | float16
bits; vocabularies up to 65,536) or ``fwd_terms`` int32 + ``fwd_bits`` uint16, the
unused form being empty.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from index.kernels.heap import heap_drain, heap_push
from index.kernels.intrinsics import f16_bits_to_f32, prefetch
from index.kernels.summaries import id_bits

# Scoring pipeline (see _score_block): ring size (a power of two >= _LAG1 + _LAG2 + 1)
# and the two lags, in documents.
_RING = 32
_LAG1 = 6
_LAG2 = 16


@njit(cache=True, nogil=True, inline="always")
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


@njit(cache=True, nogil=True, inline="always")
def forward_dot(
    dense: np.ndarray,
    fwd_packed: np.ndarray,
    fwd_terms: np.ndarray,
    fwd_bits: np.ndarray,
    start: int,
    stop: int,
) -> np.float32:
    """Inner product of ``dense`` float32 (dim,) with the forward entries ``[start, stop)``
    of one row, summed in term order (the same order as
    :func:`index.kernels.exact.dot_dense_csr`)."""
    acc = np.float32(0.0)
    if fwd_terms.shape[0] == 0:
        for j in range(start, stop):
            x = fwd_packed[j]
            acc += dense[x >> 16] * f16_bits_to_f32(np.uint16(x & 0xFFFF))
    else:
        for j in range(start, stop):
            acc += dense[fwd_terms[j]] * f16_bits_to_f32(fwd_bits[j])
    return acc


@njit(cache=True, nogil=True, inline="always")
def _prefetch_row(
    fwd_packed: np.ndarray, fwd_terms: np.ndarray, fwd_bits: np.ndarray, start: int, stop: int
) -> None:
    """Prefetch every cache line of forward entries ``[start, stop)``: a SPLADE row spans
    2-4 lines, and fetching only its first leaves the others as serial misses."""
    if stop <= start:
        return
    if fwd_terms.shape[0] == 0:
        for j in range(start, stop, 16):
            prefetch(fwd_packed, j)
        prefetch(fwd_packed, stop - 1)
    else:
        for j in range(start, stop, 16):
            prefetch(fwd_terms, j)
        prefetch(fwd_terms, stop - 1)
        for j in range(start, stop, 32):
            prefetch(fwd_bits, j)
        prefetch(fwd_bits, stop - 1)


@njit(cache=True, nogil=True, inline="always")
def _resolve(i: int, ix: tuple, pend: np.ndarray) -> None:
    """Ring slot ``i``: read its row's forward offsets and prefetch the row's lines."""
    fwd_offsets, fwd_packed, fwd_terms, fwd_bits = ix[10], ix[11], ix[12], ix[13]
    slot = i & (_RING - 1)
    r = pend[slot]
    a = fwd_offsets[r]
    e = fwd_offsets[r + 1]
    pend[_RING + slot] = a
    pend[2 * _RING + slot] = e
    _prefetch_row(fwd_packed, fwd_terms, fwd_bits, a, e)


@njit(cache=True, nogil=True, inline="always")
def _score(i: int, ix: tuple, scratch: tuple, size: int) -> int:
    """Ring slot ``i``: score its row exactly and offer it to the heap; returns the heap size."""
    fwd_packed, fwd_terms, fwd_bits, row_ids = ix[11], ix[12], ix[13], ix[14]
    dense, heap_scores, heap_rows, pend = scratch[0], scratch[7], scratch[8], scratch[9]
    slot = i & (_RING - 1)
    s = forward_dot(
        dense, fwd_packed, fwd_terms, fwd_bits, pend[_RING + slot], pend[2 * _RING + slot]
    )
    # Ties are broken on the caller's row numbers: look them up only for documents that
    # may enter the heap.
    if size < heap_scores.shape[0] or s >= heap_scores[0]:
        size = heap_push(heap_scores, heap_rows, size, s, row_ids[pend[slot]])
    return size


@njit(cache=True, nogil=True)
def _score_block(
    p0: int, p1: int, ix: tuple, allowed: np.ndarray, scratch: tuple, size: int, n_words: int
) -> tuple[int, int]:
    """Feed the unseen documents of postings ``[p0, p1)`` to the scoring pipeline.

    Returns the new heap size and number of touched bitset words. The pipeline is a ring
    (``pend``): a document's forward offsets are prefetched when it enters, read (and all
    lines of its row prefetched) ``_LAG1`` documents later, and it is scored ``_LAG2``
    documents after that, across block boundaries, so that the cache misses of about
    ``_LAG1 + _LAG2`` documents are always in flight. Scores therefore reach the heap a
    few documents late: block skipping sees a slightly older ``heap_min`` (never skips
    more). :func:`_flush` scores what is left.
    """
    postings, fwd_offsets, row_ids = ix[2], ix[10], ix[14]
    seen, words, pend, stats = scratch[1], scratch[2], scratch[9], scratch[10]
    filtered = allowed.shape[0] > 0
    head = pend[3 * _RING]
    mid = pend[3 * _RING + 1]
    tail = pend[3 * _RING + 2]
    n = 0
    for p in range(p0, p1):
        r = postings[p]
        w = r >> 6
        bit = np.uint64(1) << np.uint64(r & 63)
        if seen[w] & bit:
            continue
        if seen[w] == 0:
            words[n_words] = w
            n_words += 1
        seen[w] |= bit
        if filtered and allowed[row_ids[r]] == 0:
            continue
        prefetch(fwd_offsets, r)
        pend[head & (_RING - 1)] = r
        head += 1
        n += 1
        if head - mid > _LAG1:
            _resolve(mid, ix, pend)
            mid += 1
            if mid - tail > _LAG2:
                size = _score(tail, ix, scratch, size)
                tail += 1
    stats[0] += n
    pend[3 * _RING] = head
    pend[3 * _RING + 1] = mid
    pend[3 * _RING + 2] = tail
    return size, n_words


@njit(cache=True, nogil=True)
def _flush(ix: tuple, scratch: tuple, size: int) -> int:
    """Score every document still in the pipeline and empty it; returns the heap size."""
    pend = scratch[9]
    head = pend[3 * _RING]
    for i in range(pend[3 * _RING + 1], head):
        _resolve(i, ix, pend)
    for i in range(pend[3 * _RING + 2], head):
        size = _score(i, ix, scratch, size)
    pend[3 * _RING] = 0
    pend[3 * _RING + 1] = 0
    pend[3 * _RING + 2] = 0
    return size


@njit(cache=True, nogil=True)
def _walk_blocks(
    nc: int,
    heap_factor: float,
    ix: tuple,
    allowed: np.ndarray,
    scratch: tuple,
    size: int,
    n_words: int,
) -> tuple[int, int]:
    """Visit the ``nc`` candidate blocks (scratch ``cand_s`` scores / ``cand_b`` ids)
    best-first; once the heap is full, the first block scoring below
    ``heap_factor * heap_min`` ends the walk (every later one scores lower still)."""
    block_docs = ix[1]
    cand_s, cand_b, heap_scores, stats = scratch[5], scratch[6], scratch[7], scratch[10]
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
        stats[1] += 1
        size, n_words = _score_block(
            block_docs[b], block_docs[b + 1], ix, allowed, scratch, size, n_words
        )
    return size, n_words


@njit(cache=True, nogil=True)
def _prefetch_list_terms(t: int, ix: tuple) -> None:
    """Prefetch the summary term ids of list ``t`` (and their entry offsets), which the
    binary searches of :func:`_list_block_scores` would otherwise miss on one by one."""
    list_sterms, sterm, sterm_entries = ix[5], ix[6], ix[7]
    lo = list_sterms[t]
    hi = list_sterms[t + 1]
    step_t = 64 // sterm.itemsize
    step_e = 64 // sterm_entries.itemsize
    for j in range(lo, hi, step_t):
        prefetch(sterm, j)
    for j in range(lo, hi, step_e):
        prefetch(sterm_entries, j)


@njit(cache=True, nogil=True)
def _list_block_scores(
    t: int,
    q_terms: np.ndarray,
    q_vals: np.ndarray,
    ix: tuple,
    acc: np.ndarray,
    qsum: np.ndarray,
    m_idx: np.ndarray,
) -> int:
    """Summary score of each block of list ``t`` into ``acc``; returns the block count.

    Two passes: find the list's entries of every query term (``m_idx`` int64 scratch of
    the query's length) and prefetch them, then accumulate them: the entries of
    different terms lie far apart, and this way their misses overlap.
    """
    list_blocks, block_min, block_scale = ix[0], ix[3], ix[4]
    list_sterms, sterm, sterm_entries, sentry_block, sentry_code = ix[5], ix[6], ix[7], ix[8], ix[9]
    list_entries, list_block_bytes = ix[15], ix[16]
    b0 = list_blocks[t]
    nb = list_blocks[t + 1] - b0
    acc[:nb] = 0.0
    qsum[:nb] = 0.0
    e_base = list_entries[t]
    n_entries = list_entries[t + 1] - e_base
    y_base = list_block_bytes[t]
    width = id_bits(nb)
    mask = (np.int64(1) << width) - 1
    # Query terms and the list's summary terms are both ascending: a moving binary search.
    lo = list_sterms[t]
    hi = list_sterms[t + 1]
    n_m = 0
    for j in range(q_terms.shape[0]):
        if lo >= hi:
            break
        u = q_terms[j]
        idx = lo + np.searchsorted(sterm[lo:hi], u)
        if idx < hi and sterm[idx] == u:
            e0 = np.int64(sterm_entries[idx])
            prefetch(sentry_code, e_base + e0)
            prefetch(sentry_block, y_base + ((e0 * width) >> 3))
            m_idx[n_m] = j
            m_idx[n_m + 1] = idx
            n_m += 2
            lo = idx + 1
        else:
            lo = idx
    for i in range(0, n_m, 2):
        v = q_vals[m_idx[i]]
        idx = m_idx[i + 1]
        e0 = np.int64(sterm_entries[idx])
        e1 = np.int64(sterm_entries[idx + 1]) if idx + 1 < hi else n_entries
        for e in range(e0, e1):
            pos = e * width
            y = y_base + (pos >> 3)
            x = np.int64(sentry_block[y]) | (np.int64(sentry_block[y + 1]) << 8)
            x |= (np.int64(sentry_block[y + 2]) << 16) | (np.int64(sentry_block[y + 3]) << 24)
            b = (x >> (pos & 7)) & mask
            acc[b] += v * np.float32(sentry_code[e_base + e])
            qsum[b] += v
    for b in range(nb):
        acc[b] = block_min[b0 + b] * qsum[b] + block_scale[b0 + b] * acc[b]
    return nb


@njit(cache=True, nogil=True)
def search_one(
    q_terms: np.ndarray,
    q_vals: np.ndarray,
    query_cut: int,
    heap_factor: float,
    global_order: bool,
    ix: tuple,
    allowed: np.ndarray,
    scratch: tuple,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> None:
    """Approximate top-k for one query: ``q_terms`` int32 ascending, ``q_vals`` float32.

    ``allowed`` uint8 (n_docs,) masks caller rows out where 0 (length 0: no filter).
    ``scratch`` = ``(dense float32 (dim,) zeroed, seen uint64 (n_docs/64+1,) zeroed,
    words int32 (same), acc, qsum float32 (max blocks per list), cand_s float32, cand_b
    int32 (candidate capacity), heap float32 (k,), heap int64 (k,), pend int64
    (3 * _RING + 3,) with its last 3 zeroed, stats int64 (4,))``; the zeroed arrays are
    left zeroed. Results go to ``out_rows`` int64 / ``out_scores`` float32 (k,), best
    first, padded with -1 / 0.0.
    """
    dense, seen, words, acc, qsum, cand_s, cand_b = scratch[:7]
    heap_scores, heap_rows, stats = scratch[7], scratch[8], scratch[10]
    list_blocks = ix[0]
    nq = q_terms.shape[0]
    for j in range(nq):
        dense[q_terms[j]] = q_vals[j]
    order = np.argsort(-q_vals, kind="mergesort")
    n_cut = min(query_cut, nq)
    for ci in range(n_cut):
        _prefetch_list_terms(q_terms[order[ci]], ix)
    m_idx = np.empty(2 * nq, dtype=np.int64)
    size = 0
    n_words = 0
    k = heap_scores.shape[0]
    nc = 0
    for ci in range(n_cut):
        t = q_terms[order[ci]]
        b0 = list_blocks[t]
        nb = _list_block_scores(t, q_terms, q_vals, ix, acc, qsum, m_idx)
        stats[2] += nb
        thr = -np.inf
        if size == k:
            thr = heap_factor * heap_scores[0]
        if not global_order and ci > 0:
            # Seismic's loop after the first list: blocks in list order, each skipped
            # when its summary score is below heap_factor * heap_min at that moment.
            block_docs = ix[1]
            for b in range(nb):
                if size == k and acc[b] < heap_factor * heap_scores[0]:
                    continue
                stats[1] += 1
                size, n_words = _score_block(
                    block_docs[b0 + b], block_docs[b0 + b + 1], ix, allowed, scratch, size, n_words
                )
            continue
        for b in range(nb):
            if acc[b] >= thr:
                cand_s[nc] = acc[b]
                cand_b[nc] = b0 + b
                nc += 1
        if not global_order:
            size, n_words = _walk_blocks(nc, heap_factor, ix, allowed, scratch, size, n_words)
    if global_order:
        size, n_words = _walk_blocks(nc, heap_factor, ix, allowed, scratch, size, n_words)
    size = _flush(ix, scratch, size)
    heap_drain(heap_scores, heap_rows, size, out_rows, out_scores)
    for j in range(nq):
        dense[q_terms[j]] = 0.0
    for i in range(n_words):
        seen[words[i]] = 0


@njit(cache=True, nogil=True)
def search_serial(
    q_indptr: np.ndarray,
    q_indices: np.ndarray,
    q_data: np.ndarray,
    query_cut: int,
    heap_factor: float,
    global_order: bool,
    ix: tuple,
    allowed: np.ndarray,
    scratch: tuple,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> None:
    """Queries (CSR int64/int32/float32) one after another on the caller's thread with the
    caller's scratch (see :func:`search_one`)."""
    for q in range(q_indptr.shape[0] - 1):
        a = q_indptr[q]
        b = q_indptr[q + 1]
        search_one(
            q_indices[a:b],
            q_data[a:b],
            query_cut,
            heap_factor,
            global_order,
            ix,
            allowed,
            scratch,
            out_rows[q],
            out_scores[q],
        )


@njit(cache=True, nogil=True)
def make_scratch(dim: int, n_docs: int, max_blocks: int, max_cand: int, k: int) -> tuple:
    """Fresh scratch for :func:`search_one` (see there for the layout)."""
    n_words = n_docs // 64 + 1
    return (
        np.zeros(dim, dtype=np.float32),
        np.zeros(n_words, dtype=np.uint64),
        np.empty(n_words, dtype=np.int32),
        np.empty(max_blocks, dtype=np.float32),
        np.empty(max_blocks, dtype=np.float32),
        np.empty(max_cand, dtype=np.float32),
        np.empty(max_cand, dtype=np.int32),
        np.empty(k, dtype=np.float32),
        np.empty(k, dtype=np.int64),
        np.zeros(3 * _RING + 3, dtype=np.int64),
        np.zeros(4, dtype=np.int64),
    )


@njit(cache=True, nogil=True, parallel=True)
def search_batch(
    q_indptr: np.ndarray,
    q_indices: np.ndarray,
    q_data: np.ndarray,
    query_cut: int,
    heap_factor: float,
    global_order: bool,
    ix: tuple,
    allowed: np.ndarray,
    dim: int,
    max_blocks: int,
    max_cand: int,
    n_chunks: int,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> None:
    """All queries, ``n_chunks`` contiguous chunks in parallel (``prange``); each chunk
    allocates its scratch once and reuses it for its queries."""
    nq = q_indptr.shape[0] - 1
    n_docs = ix[10].shape[0] - 1
    k = out_rows.shape[1]
    per = (nq + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        start = c * per
        stop = min(nq, start + per)
        if start >= stop:
            continue
        scratch = make_scratch(dim, n_docs, max_blocks, max_cand, k)
        search_serial(
            q_indptr[start : stop + 1],
            q_indices,
            q_data,
            query_cut,
            heap_factor,
            global_order,
            ix,
            allowed,
            scratch,
            out_rows[start:stop],
            out_scores[start:stop],
        )
