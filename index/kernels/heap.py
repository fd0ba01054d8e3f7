"""Array-based top-k heap with a total order: higher score first, then lower row.

The root of the heap is the *worst* kept hit, so a candidate enters only if it beats
the root. Ties on score are broken by the lower row winning, which makes every top-k
answer unique and independent of the order in which documents are visited.
"""

from __future__ import annotations

import numpy as np

from index.kernels.jit import leaf


@leaf
def _worse(s_a: float, r_a: int, s_b: float, r_b: int) -> bool:
    """True when hit ``a`` ranks below hit ``b`` (lower score, or same score and higher row)."""
    return s_a < s_b or (s_a == s_b and r_a > r_b)


@leaf
def _replace_root(scores: np.ndarray, rows: np.ndarray, n: int, score: float, row: int) -> None:
    """Put ``(score, row)`` at the root of the heap's first ``n`` entries and sift it down."""
    i = 0
    while True:
        left = 2 * i + 1
        if left >= n:
            break
        child = left
        right = left + 1
        if right < n and _worse(scores[right], rows[right], scores[left], rows[left]):
            child = right
        if _worse(scores[child], rows[child], score, row):
            scores[i] = scores[child]
            rows[i] = rows[child]
            i = child
        else:
            break
    scores[i] = score
    rows[i] = row


@leaf
def heap_push(scores: np.ndarray, rows: np.ndarray, size: int, score: float, row: int) -> int:
    """Offer ``(score, row)`` to the heap ``scores`` float32 (k,), ``rows`` int64 (k,).

    ``size`` is the number of valid entries; returns the new size (<= k).
    """
    k = scores.shape[0]
    if size < k:
        i = size
        while i > 0:
            parent = (i - 1) >> 1
            if _worse(score, row, scores[parent], rows[parent]):
                scores[i] = scores[parent]
                rows[i] = rows[parent]
                i = parent
            else:
                break
        scores[i] = score
        rows[i] = row
        return size + 1
    if not _worse(scores[0], rows[0], score, row):
        return size
    _replace_root(scores, rows, k, score, row)
    return size


@leaf
def heap_drain(
    scores: np.ndarray, rows: np.ndarray, size: int, out_rows: np.ndarray, out_scores: np.ndarray
) -> None:
    """Write the heap's hits best-first into ``out_rows`` int64 (k,) / ``out_scores`` float32 (k,).

    Slots past ``size`` get row -1 and score 0.0. Destroys the heap.
    """
    k = out_rows.shape[0]
    for j in range(size, k):
        out_rows[j] = -1
        out_scores[j] = 0.0
    n = size
    while n > 0:
        # The root is the worst remaining hit: it goes to the last free slot.
        out_rows[n - 1] = rows[0]
        out_scores[n - 1] = scores[0]
        n -= 1
        _replace_root(scores, rows, n, scores[n], rows[n])


@leaf
def max_heap_sift_down(keys: np.ndarray, vals: np.ndarray, i: int, n: int) -> None:
    """Sift entry ``i`` down the max-heap of the first ``n`` entries of ``keys`` (float32
    or float64) with payload ``vals`` (int32): a best-first queue of blocks or ranges."""
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
def max_heap_pop(keys: np.ndarray, vals: np.ndarray, n: int) -> int:
    """Remove the root of the max-heap of the first ``n`` entries; returns the new size."""
    n -= 1
    keys[0] = keys[n]
    vals[0] = vals[n]
    max_heap_sift_down(keys, vals, 0, n)
    return n


@leaf
def max_heapify(keys: np.ndarray, vals: np.ndarray, n: int) -> None:
    """Make the first ``n`` entries a max-heap (Floyd's bottom-up build, O(n))."""
    for i in range(n // 2 - 1, -1, -1):
        max_heap_sift_down(keys, vals, i, n)
