"""Blocking: split every pruned posting list into blocks of similar documents.

A shallow k-means in Seismic's way: ``n_centroids`` documents of the list, drawn at
random (seeded per list), become centroids; each document of the list joins the
centroid with the largest inner product between the document's ``doc_cut`` heaviest
terms and the centroid's full vector (one assignment pass, scored through a small
inverted index over the centroids). Vectors come from the forward index.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from index.kernels.intrinsics import f16_bits_to_f32
from index.kernels.jit import leaf
from index.kernels.pruning import fwd_bits, fwd_term

# Lists with at least this many centroids keep their common terms as dense columns.
_DENSE_MIN = 16
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, nogil=True)
def splitmix64(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    """One step of SplitMix64: returns ``(new_state, random uint64)``."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def sample_positions(n: int, m: int, seed: np.uint64) -> np.ndarray:
    """``m`` distinct positions in ``[0, n)`` (partial Fisher-Yates), int64 (m,), sorted."""
    perm = np.arange(n)
    state = seed
    for i in range(m):
        state, r = splitmix64(state)
        j = i + np.int64(r % np.uint64(n - i))
        tmp = perm[i]
        perm[i] = perm[j]
        perm[j] = tmp
    out = perm[:m].copy()
    out.sort()
    return out


@njit(cache=True, nogil=True, _nrt=False, fastmath=True)
def _max(x: np.ndarray) -> np.float32:
    """Largest value of ``x`` float32 (vectorised: fast-math only reorders the max)."""
    m = np.float32(-np.inf)
    for i in range(x.shape[0]):
        m = max(m, x[i])
    return m


@leaf
def _axpy(v: np.float32, x: np.ndarray, y: np.ndarray) -> None:
    """``y += v * x`` (float32, vectorised)."""
    for i in range(y.shape[0]):
        y[i] += v * x[i]


@leaf
def _best_centroid(
    d: int,
    top_terms: np.ndarray,
    top_bits: np.ndarray,
    top_len: np.ndarray,
    t_start: np.ndarray,
    t_count: np.ndarray,
    t_slot: np.ndarray,
    e_cent: np.ndarray,
    e_val: np.ndarray,
    dense_cols: np.ndarray,
    scores: np.ndarray,
    dead: np.ndarray,
    fallback: int,
) -> int:
    """The live centroid with the largest inner product with document ``d``'s top terms
    (ties to the lower centroid), or ``fallback`` when none shares a term with it.

    Scores go to a dense ``scores`` float32 (n_centroids,) zeroed per document. A term
    that many centroids hold (``t_slot[u] >= 0``; the list's own term is in all of them)
    adds its dense column ``dense_cols[t_slot[u]]`` in one vector pass; rarer terms add
    their few (centroid, weight) entries. ``dead`` int32: centroids that may not win."""
    scores[:] = 0.0
    for m in range(top_len[d]):
        u = top_terms[d, m]
        v = f16_bits_to_f32(top_bits[d, m])
        slot = t_slot[u]
        if slot >= 0:
            _axpy(v, dense_cols[slot], scores)
            continue
        s = t_start[u]
        for e in range(s, s + t_count[u]):
            scores[e_cent[e]] += v * e_val[e]
    for i in range(dead.shape[0]):
        scores[dead[i]] = -1.0
    return _argmax_positive(scores, fallback)


@leaf
def _argmax_positive(scores: np.ndarray, fallback: int) -> int:
    """Index of the largest value of ``scores`` float32 (the first of equals), or
    ``fallback`` when none is > 0. The maxima of 64-value segments are vectorised; only
    the segment that holds the winner is scanned value by value."""
    n = scores.shape[0]
    best = np.float32(0.0)
    seg = -1
    for s0 in range(0, n, 64):
        m = _max(scores[s0 : min(n, s0 + 64)])
        if m > best:
            best = m
            seg = s0
    if seg < 0:
        return fallback
    for c in range(seg, min(n, seg + 64)):
        if scores[c] == best:
            return c
    return fallback


@njit(cache=True, nogil=True)
def cluster_one_list(
    rows: np.ndarray,
    weights: np.ndarray,
    n_centroids: int,
    min_cluster_size: int,
    seed: np.uint64,
    fwd_offsets: np.ndarray,
    fwd_packed: np.ndarray,
    fwd_terms: np.ndarray,
    fwd_bits_: np.ndarray,
    top_terms: np.ndarray,
    top_bits: np.ndarray,
    top_len: np.ndarray,
    t_start: np.ndarray,
    t_count: np.ndarray,
    t_slot: np.ndarray,
    out_rows: np.ndarray,
    block_sizes: np.ndarray,
) -> None:
    """Cluster one posting list (``rows`` int32 ascending, ``weights`` uint16 float16 bits)
    into ``n_centroids`` blocks; writes the rows grouped by block (ascending inside a
    block) to ``out_rows`` and the block sizes (some may be 0) to ``block_sizes`` int64.

    Centroids are documents of the list drawn at random (seeded); their full vectors come
    from the forward index (``fwd_*``). ``t_start`` int64 (dim,) and ``t_count`` int32
    (dim,) are zeroed scratch, ``t_slot`` int32 (dim,) scratch of -1; all left so.
    """
    n = rows.shape[0]
    if n_centroids <= 1 or n <= 1:
        out_rows[:] = rows
        block_sizes[0] = n
        for c in range(1, n_centroids):
            block_sizes[c] = 0
        return
    cpos = sample_positions(n, n_centroids, seed)
    # Inverted index over the centroids' full vectors: term -> (centroid, weight), with
    # the terms that an eighth or more of the centroids hold kept as dense columns.
    total = 0
    for c in range(n_centroids):
        r = rows[cpos[c]]
        total += fwd_offsets[r + 1] - fwd_offsets[r]
    touched = np.empty(total, dtype=np.int32)
    n_touched = 0
    for c in range(n_centroids):
        r = rows[cpos[c]]
        for j in range(fwd_offsets[r], fwd_offsets[r + 1]):
            u = fwd_term(fwd_packed, fwd_terms, j)
            if t_count[u] == 0:
                touched[n_touched] = u
                n_touched += 1
            t_count[u] += 1
    n_dense = 0
    pos = 0
    for i in range(n_touched):
        u = touched[i]
        if n_centroids >= _DENSE_MIN and 8 * t_count[u] >= n_centroids:
            t_slot[u] = n_dense
            n_dense += 1
            t_count[u] = 0
            continue
        t_start[u] = pos
        pos += t_count[u]
        t_count[u] = 0
    dense_cols = np.zeros((n_dense, n_centroids), dtype=np.float32)
    e_cent = np.empty(pos, dtype=np.int32)
    e_val = np.empty(pos, dtype=np.float32)
    best_on_list = 0
    for c in range(n_centroids):
        if weights[cpos[c]] > weights[cpos[best_on_list]]:
            best_on_list = c
        r = rows[cpos[c]]
        for j in range(fwd_offsets[r], fwd_offsets[r + 1]):
            u = fwd_term(fwd_packed, fwd_terms, j)
            val = f16_bits_to_f32(fwd_bits(fwd_packed, fwd_bits_, j))
            if t_slot[u] >= 0:
                dense_cols[t_slot[u], c] = val
                continue
            e = t_start[u] + t_count[u]
            e_cent[e] = c
            e_val[e] = val
            t_count[u] += 1
    scores = np.empty(n_centroids, dtype=np.float32)
    assign = np.empty(n, dtype=np.int32)
    sizes = np.zeros(n_centroids, dtype=np.int64)
    dead = np.empty(0, dtype=np.int32)
    for i in range(n):
        best = _best_centroid(
            rows[i], top_terms, top_bits, top_len, t_start, t_count, t_slot, e_cent, e_val,
            dense_cols, scores, dead, best_on_list,
        )  # fmt: skip
        assign[i] = best
        sizes[best] += 1
    # Seismic's min_cluster_size: dissolve clusters of at most that many documents and
    # send their documents to the best surviving centroid.
    n_alive = 0
    for c in range(n_centroids):
        if sizes[c] > min_cluster_size:
            n_alive += 1
    if 0 < n_alive < n_centroids:
        best_on_list = -1
        alive = np.ones(n_centroids, dtype=np.uint8)
        dead = np.empty(n_centroids - n_alive, dtype=np.int32)
        n_dead = 0
        for c in range(n_centroids):
            if sizes[c] <= min_cluster_size:
                alive[c] = 0
                dead[n_dead] = c
                n_dead += 1
            elif best_on_list < 0 or weights[cpos[c]] > weights[cpos[best_on_list]]:
                best_on_list = c
        for i in range(n):
            if alive[assign[i]]:
                continue
            sizes[assign[i]] -= 1
            best = _best_centroid(
                rows[i], top_terms, top_bits, top_len, t_start, t_count, t_slot, e_cent,
                e_val, dense_cols, scores, dead, best_on_list,
            )  # fmt: skip
            assign[i] = best
            sizes[best] += 1
    for i in range(n_touched):
        t_count[touched[i]] = 0
        t_slot[touched[i]] = -1
    # Stable counting sort by block keeps rows ascending inside each block.
    fill = np.empty(n_centroids, dtype=np.int64)
    pos = 0
    for c in range(n_centroids):
        fill[c] = pos
        pos += sizes[c]
        block_sizes[c] = sizes[c]
    for i in range(n):
        c = assign[i]
        out_rows[fill[c]] = rows[i]
        fill[c] += 1


@njit(cache=True, nogil=True, parallel=True)
def cluster_lists(
    offsets: np.ndarray,
    rows: np.ndarray,
    weights: np.ndarray,
    n_centroids: np.ndarray,
    block_base: np.ndarray,
    seed: int,
    min_cluster_size: int,
    list_order: np.ndarray,
    n_chunks: int,
    fwd_offsets: np.ndarray,
    fwd_packed: np.ndarray,
    fwd_terms: np.ndarray,
    fwd_bits_: np.ndarray,
    top_terms: np.ndarray,
    top_bits: np.ndarray,
    top_len: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster every pruned list (CSC ``offsets`` int64 (dim+1,), ``rows`` int32, ``weights``
    uint16 float16 bits). ``n_centroids`` int64 (dim,) per list, ``block_base`` int64
    (dim+1,) its prefix sum. Lists are handled in ``list_order`` (longest first), dealt
    round-robin to ``n_chunks`` chunks so that threads get balanced work.

    Returns ``(rows grouped by block int32 (len(rows),), block sizes int64 (block_base[-1],))``.
    """
    dim = offsets.shape[0] - 1
    out_rows = np.empty_like(rows)
    block_sizes = np.zeros(block_base[-1], dtype=np.int64)
    n_lists = list_order.shape[0]
    for ch in prange(n_chunks):
        t_start = np.zeros(dim, dtype=np.int64)
        t_count = np.zeros(dim, dtype=np.int32)
        t_slot = np.full(dim, -1, dtype=np.int32)
        for i in range(ch, n_lists, n_chunks):
            t = list_order[i]
            a = offsets[t]
            b = offsets[t + 1]
            if a == b:
                continue
            list_seed = np.uint64(seed) ^ (np.uint64(t) * np.uint64(0x9E3779B97F4A7C15))
            cluster_one_list(
                rows[a:b],
                weights[a:b],
                n_centroids[t],
                min_cluster_size,
                list_seed,
                fwd_offsets,
                fwd_packed,
                fwd_terms,
                fwd_bits_,
                top_terms,
                top_bits,
                top_len,
                t_start,
                t_count,
                t_slot,
                out_rows[a:b],
                block_sizes[block_base[t] : block_base[t + 1]],
            )
    return out_rows, block_sizes
