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

from index.kernels.intrinsics import f16_bits_to_f32, prefetch
from index.kernels.jit import leaf
from index.kernels.pruning import fwd_bits, fwd_term


@leaf
def _sift_down_u16(a: np.ndarray, i: int, n: int) -> None:
    """Max-heap sift-down of ``a[i]`` within ``a[:n]`` (uint16)."""
    v = a[i]
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and a[child + 1] > a[child]:
            child += 1
        if a[child] > v:
            a[i] = a[child]
            i = child
        else:
            break
    a[i] = v


@leaf
def _heapsort_u16(a: np.ndarray, n: int) -> None:
    """Sort ``a[:n]`` (uint16) ascending in place, without allocating."""
    for i in range(n // 2 - 1, -1, -1):
        _sift_down_u16(a, i, n)
    for end in range(n - 1, 0, -1):
        top = a[0]
        a[0] = a[end]
        a[end] = top
        _sift_down_u16(a, 0, end)


@leaf
def _scatter_max(
    rows: np.ndarray,
    fwd_offsets: np.ndarray,
    fwd_packed: np.ndarray,
    fwd_terms: np.ndarray,
    fwd_bits_: np.ndarray,
    mx: np.ndarray,
    touched: np.ndarray,
) -> int:
    """Coordinate-wise maximum of documents ``rows`` as float16 bits in ``mx`` uint16
    (dim,) (zero = untouched; non-negative float16 bit patterns order as their values);
    the touched terms go to ``touched``, their number is returned. Every line of the
    documents' rows is prefetched first: the rows are scattered over the forward index."""
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(fwd_offsets[r], fwd_offsets[r + 1], 16):
            if fwd_packed.shape[0]:
                prefetch(fwd_packed, j)
            else:
                prefetch(fwd_terms, j)
                prefetch(fwd_bits_, j)
    n_t = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(fwd_offsets[r], fwd_offsets[r + 1]):
            u = fwd_term(fwd_packed, fwd_terms, j)
            v = fwd_bits(fwd_packed, fwd_bits_, j)
            old = mx[u]
            if old == 0:
                if v == 0:
                    continue  # a zero weight never raises the maximum
                touched[n_t] = u
                n_t += 1
            if v > old:
                mx[u] = v
    return n_t


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
    counts: np.ndarray,
    sums: np.ndarray,
    tmp: np.ndarray,
    out_terms: np.ndarray,
    out_vals: np.ndarray,
) -> int:
    """Summary of the documents ``rows`` int32 into ``out_terms`` int32 (first-seen order)
    and ``out_vals`` float32; returns its length.

    The coordinate-wise maximum keeps every coordinate at or above the value where the
    running sum of the heaviest ones first reaches ``alpha`` of the total (at least one).
    That cut is found without sorting: the values are bucketed by the high byte of their
    float16 bits (256 buckets, in value order), the buckets summed from the top down to
    the one where the sum reaches the target, and only that bucket's values sorted.
    Scratch: ``mx`` uint16 (dim,) zeroed (left zeroed), ``touched`` int32 (dim,),
    ``counts`` int64 (256,), ``sums`` float64 (256,), ``tmp`` uint16 (dim,).
    """
    n_t = _scatter_max(rows, fwd_offsets, fwd_packed, fwd_terms, fwd_bits_, mx, touched)
    counts[:] = 0
    sums[:] = 0.0
    total = 0.0
    for i in range(n_t):
        vb = mx[touched[i]]
        v = f16_bits_to_f32(vb)
        counts[vb >> 8] += 1
        sums[vb >> 8] += v
        total += v
    target = alpha * total
    acc = 0.0
    cut = np.uint16(0)
    for k in range(255, -1, -1):
        if counts[k] == 0:
            continue
        if acc + sums[k] < target:
            acc += sums[k]
            continue
        n = 0
        for i in range(n_t):
            vb = mx[touched[i]]
            if (vb >> 8) == k:
                tmp[n] = vb
                n += 1
        _heapsort_u16(tmp, n)
        for i in range(n - 1, -1, -1):
            cut = tmp[i]
            acc += f16_bits_to_f32(cut)
            if acc >= target:
                break
        break
    m = 0
    for i in range(n_t):
        u = touched[i]
        vb = mx[u]
        if vb >= cut:
            out_terms[m] = u
            out_vals[m] = f16_bits_to_f32(vb)
            m += 1
        mx[u] = 0
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
        mx = np.zeros(dim, dtype=np.uint16)
        touched = np.empty(dim, dtype=np.int32)
        counts = np.empty(256, dtype=np.int64)
        sums = np.empty(256, dtype=np.float64)
        tmp = np.empty(dim, dtype=np.uint16)
        b_terms = np.empty(dim, dtype=np.int32)
        b_vals = np.empty(dim, dtype=np.float32)
        b_codes = np.empty(dim, dtype=np.uint8)
        t_next = np.zeros(dim, dtype=np.int64)
        uniq = np.empty(dim, dtype=np.int32)
        for i in range(ch, n_lists, n_chunks):
            t = lists[i]
            b0 = list_blocks[t]
            nb = list_blocks[t + 1] - b0
            base = region[i]
            size = region[i + 1] - base
            e_terms = np.empty(size, dtype=np.int32)
            e_codes = np.empty(size, dtype=np.uint8)
            e_blocks = np.empty(size, dtype=np.int32)
            pos = 0
            n_u = 0
            for lb in range(nb):
                b = b0 + lb
                m = block_summary(
                    rows[block_offsets[b] : block_offsets[b + 1]], fwd_offsets, fwd_packed,
                    fwd_terms, fwd_bits_, alpha, mx, touched, counts, sums, tmp, b_terms, b_vals,
                )  # fmt: skip
                lo, scale = (0.0, 0.0) if m == 0 else quantize(b_vals[:m], b_codes[:m])
                block_min[b] = lo
                block_scale[b] = scale
                for k in range(m):
                    u = b_terms[k]
                    if t_next[u] == 0:
                        uniq[n_u] = u
                        n_u += 1
                    t_next[u] += 1
                    e_terms[pos] = u
                    e_codes[pos] = b_codes[k]
                    e_blocks[pos] = lb
                    pos += 1
            # Transpose by a counting sort on the term: entries were made block by block,
            # so each term's entries come out in block order.
            terms_sorted = np.sort(uniq[:n_u])
            start = 0
            for k in range(n_u):
                u = terms_sorted[k]
                out_terms[base + k] = u
                out_term_entries[base + k] = start
                count = t_next[u]
                t_next[u] = start
                start += count
            for k in range(pos):
                u = e_terms[k]
                p = base + t_next[u]
                out_codes[p] = e_codes[k]
                out_blocks[p] = e_blocks[k]
                t_next[u] += 1
            for k in range(n_u):
                t_next[terms_sorted[k]] = 0
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
