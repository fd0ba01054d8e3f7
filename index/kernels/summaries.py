"""Block summaries: per block, the coordinate-wise maximum of its documents, pruned to
the ``alpha`` share of its mass and quantised to uint8 with a per-block min and scale.

Stored per posting list transposed (term -> (block, code)) so that one pass over the
query's terms scores every block of a list.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True, inline="always")
def _sift_down(heap: np.ndarray, i: int, n: int) -> None:
    """Max-heap sift-down of ``heap[i]`` within ``heap[:n]`` (float32)."""
    v = heap[i]
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and heap[child + 1] > heap[child]:
            child += 1
        if heap[child] > v:
            heap[i] = heap[child]
            i = child
        else:
            break
    heap[i] = v


@njit(cache=True, nogil=True)
def block_summary(
    rows: np.ndarray,
    d_indptr: np.ndarray,
    d_indices: np.ndarray,
    d_data: np.ndarray,
    alpha: float,
    mx: np.ndarray,
    touched: np.ndarray,
    out_terms: np.ndarray,
    out_vals: np.ndarray,
) -> int:
    """Summary of the documents ``rows`` int32 into ``out_terms`` int32 (first-seen order) and
    ``out_vals`` float32; returns its length.

    The coordinate-wise maximum keeps every coordinate at or above the value where the
    running sum of the heaviest ones first reaches ``alpha`` of the total (at least one).
    ``mx`` float32 (dim,) is zeroed scratch (left zeroed), ``touched`` int32 (dim,).
    """
    n_t = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(d_indptr[r], d_indptr[r + 1]):
            u = d_indices[j]
            v = d_data[j]
            if mx[u] == 0.0:
                touched[n_t] = u
                n_t += 1
            if v > mx[u]:
                mx[u] = v
    vals = np.empty(n_t, dtype=np.float32)
    total = 0.0
    for i in range(n_t):
        vals[i] = mx[touched[i]]
        total += vals[i]
    # Pop the heaviest values off a max-heap until they reach alpha of the mass: the kept
    # share is usually small, so this beats sorting all of them.
    target = alpha * total
    for i in range(n_t // 2 - 1, -1, -1):
        _sift_down(vals, i, n_t)
    acc = 0.0
    cut = vals[0] if n_t else np.float32(0.0)
    n = n_t
    while n > 0:
        cut = vals[0]
        acc += cut
        if acc >= target:
            break
        n -= 1
        vals[0] = vals[n]
        _sift_down(vals, 0, n)
    m = 0
    for i in range(n_t):
        u = touched[i]
        if mx[u] >= cut:
            out_terms[m] = u
            out_vals[m] = mx[u]
            m += 1
        mx[u] = 0.0
    return m


@njit(cache=True, nogil=True)
def quantize(values: np.ndarray, codes: np.ndarray) -> tuple[float, float]:
    """uint8 codes of ``values`` float32 on the grid ``min + scale * code``.

    Returns ``(min, scale)``.
    """
    lo = values.min()
    hi = values.max()
    scale = (hi - lo) / 255.0
    for i in range(values.shape[0]):
        if scale > 0:
            codes[i] = np.uint8(min(255.0, np.floor((values[i] - lo) / scale + 0.5)))
        else:
            codes[i] = 0
    return lo, scale


@njit(cache=True, nogil=True, parallel=True)
def summarize_blocks(
    block_docs: np.ndarray,
    rows: np.ndarray,
    d_indptr: np.ndarray,
    d_indices: np.ndarray,
    d_data: np.ndarray,
    alpha: float,
    dim: int,
    n_chunks: int,
    bound: np.ndarray,
    buf_terms: np.ndarray,
    buf_vals: np.ndarray,
    sizes: np.ndarray,
) -> None:
    """Summaries of the blocks ``block_docs`` int64 (n+1,) into ``rows`` int32.

    Block ``b`` writes its summary at ``bound[b]`` (int64 (n+1,), an upper bound on
    each block's size) in ``buf_terms`` int32 / ``buf_vals`` float32 and its length to
    ``sizes[b]``. Blocks are dealt round-robin to ``n_chunks`` chunks (one scratch each).
    """
    n_blocks = block_docs.shape[0] - 1
    for ch in prange(n_chunks):
        mx = np.zeros(dim, dtype=np.float32)
        touched = np.empty(dim, dtype=np.int32)
        for b in range(ch, n_blocks, n_chunks):
            o = bound[b]
            sizes[b] = block_summary(
                rows[block_docs[b] : block_docs[b + 1]],
                d_indptr,
                d_indices,
                d_data,
                alpha,
                mx,
                touched,
                buf_terms[o : bound[b + 1]],
                buf_vals[o : bound[b + 1]],
            )


@njit(cache=True, nogil=True, parallel=True)
def pack_summaries(
    bound: np.ndarray,
    sizes: np.ndarray,
    buf_terms: np.ndarray,
    buf_vals: np.ndarray,
    offsets: np.ndarray,
    out_terms: np.ndarray,
    out_codes: np.ndarray,
    block_min: np.ndarray,
    block_scale: np.ndarray,
) -> None:
    """Copy each block's summary from the bounded buffer to its final place
    ``offsets[b]`` (int64 (n+1,)), quantising values to ``out_codes`` uint8 and
    ``block_min`` / ``block_scale`` float32."""
    for b in prange(sizes.shape[0]):
        o = offsets[b]
        n = sizes[b]
        src = bound[b]
        out_terms[o : o + n] = buf_terms[src : src + n]
        lo, scale = quantize(buf_vals[src : src + n], out_codes[o : o + n])
        block_min[b] = lo
        block_scale[b] = scale


@njit(cache=True, nogil=True, parallel=True)
def transpose_summaries(
    list_blocks: np.ndarray,
    sum_offsets: np.ndarray,
    terms: np.ndarray,
    codes: np.ndarray,
    out_block: np.ndarray,
    out_codes: np.ndarray,
    u_terms: np.ndarray,
    u_start: np.ndarray,
    u_count: np.ndarray,
) -> None:
    """Per list, reorder its block-major summary entries to term-major.

    ``list_blocks`` int64 (dim+1,) gives each list's blocks; entries ``[sum_offsets[b0],
    sum_offsets[b1])``. Writes ``out_block`` (block index local to the list) and
    ``out_codes`` uint8 at the same positions, sorted by (term, block); the list's unique
    terms go to ``u_terms``/``u_start`` from the list's first entry on, their number to
    ``u_count[t]`` (the caller compacts).
    """
    dim = list_blocks.shape[0] - 1
    for t in prange(dim):
        b0 = list_blocks[t]
        b1 = list_blocks[t + 1]
        es = sum_offsets[b0]
        ee = sum_offsets[b1]
        n = ee - es
        if n == 0:
            continue
        nb = b1 - b0
        keys = np.empty(n, dtype=np.int64)
        local = np.empty(n, dtype=np.int64)
        for b in range(b0, b1):
            for e in range(sum_offsets[b], sum_offsets[b + 1]):
                local[e - es] = b - b0
                keys[e - es] = np.int64(terms[e]) * nb + (b - b0)
        order = np.argsort(keys)
        n_u = 0
        prev = -1
        for i in range(n):
            e = es + order[i]
            out_block[es + i] = local[order[i]]
            out_codes[es + i] = codes[e]
            term = terms[e]
            if term != prev:
                u_terms[es + n_u] = term
                u_start[es + n_u] = es + i
                n_u += 1
                prev = term
        u_count[t] = n_u


@njit(cache=True, nogil=True, inline="always")
def id_bits(n_blocks: int) -> int:
    """Bits per block id in a list of ``n_blocks`` blocks (at least 1)."""
    bits = 1
    while (1 << bits) < n_blocks:
        bits += 1
    return bits


@njit(cache=True, nogil=True, parallel=True)
def pack_block_ids(
    list_entries: np.ndarray,
    list_blocks: np.ndarray,
    list_bytes: np.ndarray,
    block_ids: np.ndarray,
    out: np.ndarray,
) -> None:
    """Bit-pack each summary entry's list-local block id (``block_ids`` int64) into ``out``
    uint8, ``id_bits(blocks of the list)`` bits each, little-endian, list ``t`` starting
    at byte ``list_bytes[t]`` (``list_entries`` / ``list_blocks`` int64 (dim+1,))."""
    dim = list_entries.shape[0] - 1
    for t in prange(dim):
        e0 = list_entries[t]
        n = list_entries[t + 1] - e0
        if n == 0:
            continue
        width = id_bits(list_blocks[t + 1] - list_blocks[t])
        o = list_bytes[t]
        for i in range(n):
            pos = i * width
            shifted = np.int64(block_ids[e0 + i]) << (pos & 7)
            for j in range(((pos & 7) + width + 7) // 8):
                out[o + (pos >> 3) + j] |= np.uint8((shifted >> (8 * j)) & 0xFF)
