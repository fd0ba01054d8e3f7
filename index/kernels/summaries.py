"""Block summaries: per block, the coordinate-wise maximum of its documents, pruned to
the ``alpha`` share of its mass and quantised to uint8 with a per-block min and scale.

Stored per posting list transposed (term -> (block, code)) so that one pass over the
query's terms scores every block of a list. Lists are summarised in batches, each list
by one thread from start to finish (block summaries, then their transposition), so that
the build's memory for summaries stays bounded by a batch, not by the whole index.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from index.kernels.intrinsics import f16_bits_to_f32
from index.kernels.jit import leaf
from index.kernels.pruning import fwd_bits, fwd_term


@leaf
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


@leaf
def block_summary(
    rows: np.ndarray,
    fwd_offsets: np.ndarray,
    fwd_packed: np.ndarray,
    fwd_terms: np.ndarray,
    fwd_bits_: np.ndarray,
    alpha: float,
    mx: np.ndarray,
    touched: np.ndarray,
    heap: np.ndarray,
    out_terms: np.ndarray,
    out_vals: np.ndarray,
) -> int:
    """Summary of the documents ``rows`` int32 into ``out_terms`` int32 (first-seen order)
    and ``out_vals`` float32; returns its length.

    The coordinate-wise maximum keeps every coordinate at or above the value where the
    running sum of the heaviest ones first reaches ``alpha`` of the total (at least one).
    Documents come from the forward index (``fwd_*``). Scratch: ``mx`` float32 (dim,)
    zeroed (left zeroed), ``touched`` int32 (dim,), ``heap`` float32 (dim,).
    """
    n_t = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(fwd_offsets[r], fwd_offsets[r + 1]):
            u = fwd_term(fwd_packed, fwd_terms, j)
            v = f16_bits_to_f32(fwd_bits(fwd_packed, fwd_bits_, j))
            if v <= 0.0:
                continue  # never raises the maximum; mx[u] == 0 keeps meaning "untouched"
            if mx[u] == 0.0:
                touched[n_t] = u
                n_t += 1
            if v > mx[u]:
                mx[u] = v
    total = 0.0
    for i in range(n_t):
        heap[i] = mx[touched[i]]
        total += heap[i]
    # Pop the heaviest values off a max-heap until they reach alpha of the mass: the kept
    # share is usually small, so this beats sorting all of them.
    target = alpha * total
    for i in range(n_t // 2 - 1, -1, -1):
        _sift_down(heap, i, n_t)
    acc = 0.0
    cut = heap[0] if n_t else np.float32(0.0)
    n = n_t
    while n > 0:
        cut = heap[0]
        acc += cut
        if acc >= target:
            break
        n -= 1
        heap[0] = heap[n]
        _sift_down(heap, 0, n)
    m = 0
    for i in range(n_t):
        u = touched[i]
        if mx[u] >= cut:
            out_terms[m] = u
            out_vals[m] = mx[u]
            m += 1
        mx[u] = 0.0
    return m


@leaf
def quantize(values: np.ndarray, codes: np.ndarray) -> tuple[float, float]:
    """uint8 codes of ``values`` float32 (at least one) on the grid ``min + scale * code``.

    Returns ``(min, scale)``.
    """
    lo = values[0]
    hi = values[0]
    for i in range(1, values.shape[0]):
        lo = min(lo, values[i])
        hi = max(hi, values[i])
    scale = (hi - lo) / 255.0
    for i in range(values.shape[0]):
        if scale > 0:
            codes[i] = np.uint8(min(255.0, np.floor((values[i] - lo) / scale + 0.5)))
        else:
            codes[i] = 0
    return lo, scale


@leaf
def id_bits(n_blocks: int) -> int:
    """Bits per block id in a list of ``n_blocks`` blocks (at least 1)."""
    bits = 1
    while (1 << bits) < n_blocks:
        bits += 1
    return bits


@njit(cache=True, nogil=True, parallel=True)
def summarize_lists(
    lists: np.ndarray,
    list_blocks: np.ndarray,
    block_offsets: np.ndarray,
    rows: np.ndarray,
    fwd_offsets: np.ndarray,
    fwd_packed: np.ndarray,
    fwd_terms: np.ndarray,
    fwd_bits_: np.ndarray,
    alpha: float,
    dim: int,
    region: np.ndarray,
    n_chunks: int,
    out_terms: np.ndarray,
    out_term_entries: np.ndarray,
    out_codes: np.ndarray,
    out_blocks: np.ndarray,
    n_entries: np.ndarray,
    n_unique: np.ndarray,
    block_min: np.ndarray,
    block_scale: np.ndarray,
) -> None:
    """Summaries of every block of the posting lists ``lists`` int64 (a batch), stored
    term-major per list.

    List ``lists[i]`` owns ``[region[i], region[i+1])`` of the ``out_*`` arrays (an upper
    bound on its entries) and writes there: its distinct summary terms ascending
    (``out_terms`` int32) with each one's first entry relative to the list
    (``out_term_entries`` uint32), then all entries sorted by (term, block): ``out_codes``
    uint8 and ``out_blocks`` int32 (list-local block ids). Their counts go to
    ``n_unique[i]`` / ``n_entries[i]``; every block's quantisation grid to the global
    ``block_min`` / ``block_scale`` float32. ``rows`` int32 holds the documents grouped by
    block (``block_offsets``), ``list_blocks`` int64 (dim+1,) each list's blocks.
    """
    n_lists = lists.shape[0]
    for ch in prange(n_chunks):
        mx = np.zeros(dim, dtype=np.float32)
        touched = np.empty(dim, dtype=np.int32)
        heap = np.empty(dim, dtype=np.float32)
        b_terms = np.empty(dim, dtype=np.int32)
        b_vals = np.empty(dim, dtype=np.float32)
        b_codes = np.empty(dim, dtype=np.uint8)
        for i in range(ch, n_lists, n_chunks):
            t = lists[i]
            b0 = list_blocks[t]
            nb = list_blocks[t + 1] - b0
            base = region[i]
            size = region[i + 1] - base
            keys = np.empty(size, dtype=np.int64)
            codes = np.empty(size, dtype=np.uint8)
            pos = 0
            for lb in range(nb):
                b = b0 + lb
                m = block_summary(
                    rows[block_offsets[b] : block_offsets[b + 1]], fwd_offsets, fwd_packed,
                    fwd_terms, fwd_bits_, alpha, mx, touched, heap, b_terms, b_vals,
                )  # fmt: skip
                lo, scale = (0.0, 0.0) if m == 0 else quantize(b_vals[:m], b_codes[:m])
                block_min[b] = lo
                block_scale[b] = scale
                for k in range(m):
                    keys[pos] = np.int64(b_terms[k]) * nb + lb
                    codes[pos] = b_codes[k]
                    pos += 1
            order = np.argsort(keys[:pos])
            n_u = 0
            prev = -1
            for k in range(pos):
                key = keys[order[k]]
                term = key // nb
                out_codes[base + k] = codes[order[k]]
                out_blocks[base + k] = key - term * nb
                if term != prev:
                    out_terms[base + n_u] = term
                    out_term_entries[base + n_u] = k
                    n_u += 1
                    prev = term
            n_entries[i] = pos
            n_unique[i] = n_u


@njit(cache=True, nogil=True, parallel=True)
def compact_batch(
    lists: np.ndarray,
    list_blocks: np.ndarray,
    region: np.ndarray,
    n_entries: np.ndarray,
    n_unique: np.ndarray,
    out_terms: np.ndarray,
    out_term_entries: np.ndarray,
    out_codes: np.ndarray,
    out_blocks: np.ndarray,
    terms: np.ndarray,
    term_entries: np.ndarray,
    codes: np.ndarray,
    entry_blocks: np.ndarray,
    n_bytes: np.ndarray,
) -> None:
    """Gather the regions written by :func:`summarize_lists` into the batch's exact-size
    arrays, the block ids bit-packed per list with ``id_bits(blocks of the list)`` bits,
    little-endian (``entry_blocks`` uint8, zeroed, list ``i`` from its byte offset on;
    ``n_bytes[i]`` its length in bytes). ``terms`` / ``term_entries`` / ``codes`` are
    filled at the prefix sums of ``n_unique`` and ``n_entries``."""
    n_lists = lists.shape[0]
    u_off = np.zeros(n_lists + 1, dtype=np.int64)
    e_off = np.zeros(n_lists + 1, dtype=np.int64)
    y_off = np.zeros(n_lists + 1, dtype=np.int64)
    for i in range(n_lists):
        t = lists[i]
        width = id_bits(list_blocks[t + 1] - list_blocks[t])
        n_bytes[i] = (width * n_entries[i] + 7) // 8
        u_off[i + 1] = u_off[i] + n_unique[i]
        e_off[i + 1] = e_off[i] + n_entries[i]
        y_off[i + 1] = y_off[i] + n_bytes[i]
    for i in prange(n_lists):
        t = lists[i]
        base = region[i]
        terms[u_off[i] : u_off[i + 1]] = out_terms[base : base + n_unique[i]]
        term_entries[u_off[i] : u_off[i + 1]] = out_term_entries[base : base + n_unique[i]]
        codes[e_off[i] : e_off[i + 1]] = out_codes[base : base + n_entries[i]]
        width = id_bits(list_blocks[t + 1] - list_blocks[t])
        o = y_off[i]
        for k in range(n_entries[i]):
            pos = k * width
            shifted = np.int64(out_blocks[base + k]) << (pos & 7)
            for j in range(((pos & 7) + width + 7) // 8):
                entry_blocks[o + (pos >> 3) + j] |= np.uint8((shifted >> (8 * j)) & 0xFF)
