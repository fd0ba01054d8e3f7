"""Sound upper bounds from the block-max index (:class:`index.layout.BlockMaxIndex`), and
the two searches built on them: exact top-k with safe early termination (Block-Max
Pruning's safe mode) and the certification of an approximate answer.

A range's bound is ``ub = sum over all query terms t of fl(fl(q_t * scale_t) * code)``,
summed in float32. It dominates the float32 score of every document of the range:

* the build rounds codes up, so ``code * scale_t >= w`` in exact arithmetic for every
  weight ``w`` of ``t`` in the range; hence the exact sum ``U`` of the bound terms is at
  least the exact score ``S = sum_t q_t * w_t`` of every document of the range.
* float32 rounds to nearest with unit roundoff ``u = 2**-24``. The bound takes two
  roundings per term and at most ``nq`` in the sum: ``ub >= U * (1 - u)**(nq + 2)``.
  A document's score (:func:`index.kernels.forward.forward_dot`) rounds each product
  once and each of its at most ``m <= nq`` non-zero additions once (adding a zero
  product is exact), plus the two that join the four partial sums; all terms are
  non-negative, so ``score <= S * (1 + u)**(m + 3)``.
* so ``score <= ub * (1 + u)**(nq + 3) / (1 - u)**(nq + 2) = ub * (1 + (2 nq + 5) u
  + O((nq u)**2))`` while nothing underflows.
* Underflow: a product that lands below float32's smallest normal number is off by up to
  ``2**-150`` absolutely (sums of such numbers are exact). The bound's ``q_t * scale_t``
  can be that small, and its error is then multiplied by the code (up to 255): at most
  ``256 * 2**-150`` a term on the bound's side, ``2**-150`` a product on the score's.

The bound used is ``ub * (1 + (2 nq + 8) * 2**-23) + (nq + 1) * 2**-140`` in float64:
twice the relative margin (covering the second-order terms and the float64 rounding of the
bound itself) plus an absolute margin of ``1024 * 2**-150`` a term (the property tests
found the amplified underflow error, which a slack of a few ``2**-150`` missed).

Ties: a document not scored with a score equal to the k-th and a lower caller row would
enter the top k, so a range is skipped only when its bound is *strictly* below the k-th
score. A document sharing a term with the query but scoring 0.0 (products underflowing)
is a hit of ``exact_search``; such documents matter only while fewer than k hits exist,
and ranges whose bound is 0.0 are then found through the query terms' pairs.
"""

from __future__ import annotations

import numpy as np

from index.kernels.forward import forward_dot, prefetch_row
from index.kernels.heap import heap_drain, heap_push, max_heap_pop, max_heapify
from index.kernels.jit import leaf
from index.kernels.scratch import STAT_DOCS, STAT_PAIRS, STAT_RANGES, STAT_VERIFIED

# The first best-first batch takes the ranges whose bound is at least this share of the
# best bound; later batches go down to the heap threshold (or by this factor while the
# heap is not full).
_FIRST_SHARE = 0.5


@leaf
def bound_margin(nq: int) -> tuple[float, float]:
    """``(factor, slack)``: a range's safe bound is ``ub * factor + slack`` (float64), for
    a query of ``nq`` terms (see the module docstring)."""
    return 1.0 + (2.0 * nq + 8.0) * 2.0**-23, (nq + 1.0) * 2.0**-140


@leaf
def range_bounds(q_terms: np.ndarray, q_vals: np.ndarray, block_max, ub: np.ndarray) -> int:
    """Add every query term's bound to ``ub`` float32 (n_ranges,): ``ub[r] += fl(fl(q_t *
    scale_t) * code)`` over the term's pairs. ``q_terms`` int32, ``q_vals`` float32 (nq,).
    Returns the number of pairs read."""
    term_ranges = block_max.term_ranges
    ranges = block_max.ranges
    codes = block_max.codes
    scales = block_max.scales
    n = 0
    for j in range(q_terms.shape[0]):
        t = q_terms[j]
        qs = q_vals[j] * scales[t]
        a = term_ranges[t]
        b = term_ranges[t + 1]
        for p in range(a, b):
            ub[ranges[p]] += qs * np.float32(codes[p])
        n += b - a
    return n


@leaf
def _shares_term(dense: np.ndarray, packed: np.ndarray, terms: np.ndarray, a: int, e: int) -> bool:
    """Whether forward entries ``[a, e)`` hold a query term (``dense`` non-zero)."""
    if packed.shape[0]:
        for j in range(a, e):
            if dense[packed[j] >> 16] != 0.0:
                return True
        return False
    for j in range(a, e):
        if dense[terms[j]] != 0.0:
            return True
    return False


@leaf
def doc_score(d: int, dense: np.ndarray, forward) -> tuple[np.float32, bool]:
    """Score of internal document ``d`` (four-partial-sum order) and whether it shares a
    term with the query (only such documents are hits, as in ``exact_search``)."""
    a = forward.offsets[d]
    e = forward.offsets[d + 1]
    s = forward_dot(dense, forward.packed, forward.terms, forward.values, a, e)
    if s != 0.0:
        return s, True
    return s, _shares_term(dense, forward.packed, forward.terms, a, e)


@leaf
def _score_range(
    r: int,
    range_size: int,
    dense: np.ndarray,
    forward,
    allowed: np.ndarray,
    heap_scores: np.ndarray,
    heap_rows: np.ndarray,
    size: int,
) -> int:
    """Offer every (allowed) hit of range ``r`` to the heap; returns the heap size."""
    n_docs = forward.offsets.shape[0] - 1
    doc_rows = forward.doc_rows
    filtered = allowed.shape[0] > 0
    k = heap_scores.shape[0]
    for d in range(r * range_size, min(n_docs, (r + 1) * range_size)):
        if filtered and allowed[doc_rows[d]] == 0:
            continue
        s, hit = doc_score(d, dense, forward)
        if hit and (size < k or s >= heap_scores[0]):
            size = heap_push(heap_scores, heap_rows, size, s, doc_rows[d])
    return size


@leaf
def _collect(ub: np.ndarray, factor: float, slack: float, lo: float, hi: float, keys, ids) -> int:
    """Ranges with a positive bound whose safe bound lies in ``[lo, hi)`` into ``keys``
    float64 / ``ids`` int32; returns how many."""
    n = 0
    for r in range(ub.shape[0]):
        u = ub[r]
        if u > 0.0:
            b = u * factor + slack
            if b >= lo and b < hi:
                keys[n] = b
                ids[n] = r
                n += 1
    return n


@leaf
def _zero_bound_ranges(
    q_terms: np.ndarray,
    block_max,
    dense: np.ndarray,
    forward,
    allowed: np.ndarray,
    ub: np.ndarray,
    heap_scores: np.ndarray,
    heap_rows: np.ndarray,
    size: int,
) -> int:
    """Score the ranges holding a query term whose float32 bound is 0.0 (every product
    underflowed: their safe bound is the absolute slack); marks them -1 in ``ub``. Only
    needed while the heap is not full or its threshold is not above that slack."""
    range_size = block_max.range_size[0]
    for j in range(q_terms.shape[0]):
        t = q_terms[j]
        for p in range(block_max.term_ranges[t], block_max.term_ranges[t + 1]):
            r = block_max.ranges[p]
            if ub[r] == 0.0:
                ub[r] = -1.0
                size = _score_range(
                    r, range_size, dense, forward, allowed, heap_scores, heap_rows, size
                )
    return size


@leaf
def exact_one(
    q_terms: np.ndarray,
    q_vals: np.ndarray,
    block_max,
    forward,
    allowed: np.ndarray,
    scratch,
    heap_scores: np.ndarray,
    heap_rows: np.ndarray,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> None:
    """Exact top-k of one query (``q_terms`` int32 ascending, ``q_vals`` float32 > 0) by
    ranges in decreasing bound order, until the best remaining bound is below the k-th
    score: the same answer as scoring every document, bit for bit (ties to the lower
    caller row). Arguments as :func:`index.kernels.search.search_one`."""
    dense = scratch.dense
    ub = scratch.range_bounds
    keys = scratch.range_keys
    ids = scratch.range_ids
    stats = scratch.stats
    range_size = block_max.range_size[0]
    n_docs = forward.offsets.shape[0] - 1
    nq = q_terms.shape[0]
    for j in range(nq):
        dense[q_terms[j]] = q_vals[j]
    stats[STAT_PAIRS] += range_bounds(q_terms, q_vals, block_max, ub)
    factor, slack = bound_margin(nq)
    best = 0.0
    for r in range(ub.shape[0]):
        best = max(best, ub[r])
    k = heap_scores.shape[0]
    size = 0
    hi = np.inf
    lo = (best * factor + slack) * _FIRST_SHARE if best > 0.0 else 0.0
    done = best == 0.0
    while not done:
        n = _collect(ub, factor, slack, lo, hi, keys, ids)
        max_heapify(keys, ids, n)
        while n > 0:
            if size == k and keys[0] < heap_scores[0]:
                done = True
                break
            r = ids[0]
            n = max_heap_pop(keys, ids, n)
            if n > 0:
                nxt = ids[0] * range_size
                prefetch_row(
                    forward.packed, forward.terms, forward.values,
                    forward.offsets[nxt], forward.offsets[min(n_docs, nxt + range_size)],
                )  # fmt: skip
            stats[STAT_RANGES] += 1
            stats[STAT_DOCS] += min(n_docs, (r + 1) * range_size) - r * range_size
            size = _score_range(
                r, range_size, dense, forward, allowed, heap_scores, heap_rows, size
            )
        if done or lo <= 0.0:
            break
        hi = lo
        if size == k:
            if heap_scores[0] >= lo:
                break  # every range left has a bound below lo <= the k-th score
            lo = max(0.0, np.float64(heap_scores[0]))
        else:
            lo = lo * _FIRST_SHARE if lo > 1e-30 else 0.0
    if size < k or heap_scores[0] <= slack:
        size = _zero_bound_ranges(
            q_terms, block_max, dense, forward, allowed, ub, heap_scores, heap_rows, size
        )
    ub[:] = 0.0
    heap_drain(heap_scores, heap_rows, size, out_rows, out_scores)
    for j in range(nq):
        dense[q_terms[j]] = 0.0


@leaf
def scan_one(
    q_terms: np.ndarray,
    q_vals: np.ndarray,
    forward,
    allowed: np.ndarray,
    scratch,
    heap_scores: np.ndarray,
    heap_rows: np.ndarray,
    out_rows: np.ndarray,
    out_scores: np.ndarray,
) -> None:
    """Exact top-k of one query by scoring every document of the forward index: the
    exact mode of an index saved before format 3 (no block-max bounds)."""
    dense = scratch.dense
    for j in range(q_terms.shape[0]):
        dense[q_terms[j]] = q_vals[j]
    n_docs = forward.offsets.shape[0] - 1
    size = _score_range(0, n_docs, dense, forward, allowed, heap_scores, heap_rows, 0)
    scratch.stats[STAT_DOCS] += n_docs
    heap_drain(heap_scores, heap_rows, size, out_rows, out_scores)
    for j in range(q_terms.shape[0]):
        dense[q_terms[j]] = 0.0


@leaf
def _verify_docs(
    first: int,
    unseen: np.uint64,
    dense: np.ndarray,
    forward,
    allowed: np.ndarray,
    full: bool,
    theta: float,
    theta_row: int,
    early_exit: bool,
    stats: np.ndarray,
    bound: float,
) -> tuple[bool, float]:
    """Score the documents ``first + i`` for each set bit ``i`` of ``unseen``; returns
    whether none of them would enter the top k (``full``: the heap held k hits, the worst
    ``(theta, theta_row)``) and the largest of their scores and ``bound``."""
    n_docs = forward.offsets.shape[0] - 1
    doc_rows = forward.doc_rows
    filtered = allowed.shape[0] > 0
    ok = True
    i = 0
    while unseen != 0:
        if unseen & np.uint64(1):
            d = first + i
            if d >= n_docs:
                break
            if not (filtered and allowed[doc_rows[d]] == 0):
                s, hit = doc_score(d, dense, forward)
                if hit:
                    stats[STAT_VERIFIED] += 1
                    bound = max(bound, np.float64(s))
                    if not full or s > theta or (s == theta and doc_rows[d] < theta_row):
                        ok = False
                        if early_exit:
                            return ok, bound
        unseen >>= np.uint64(1)
        i += 1
    return ok, bound


@leaf
def _unseen(seen: np.ndarray, first: int, mask: np.uint64) -> np.uint64:
    """Bits of the documents ``first + i`` (``i`` < range size, ``mask`` its low bits) not
    marked in the visited bitset ``seen`` uint64."""
    word = seen[first >> 6] >> np.uint64(first & 63)
    return ~word & mask


@leaf
def certify_one(
    q_terms: np.ndarray,
    q_vals: np.ndarray,
    block_max,
    forward,
    allowed: np.ndarray,
    scratch,
    full: bool,
    theta: float,
    theta_row: int,
    early_exit: bool,
) -> tuple[bool, float]:
    """Whether no document the approximate search left unscored can enter its top k.

    Called at the end of :func:`index.kernels.search.search_one`, while ``scratch.dense``
    holds the query and ``scratch.seen`` the scored documents. ``full``: the answer has k
    hits, the worst ``(theta, theta_row)``. A range whose safe bound is below ``theta``
    holds no such document; the unseen documents of every other range are scored (their
    exact scores are the tightest bounds) until one would enter (``early_exit``) or all
    are checked. Returns ``(certified, bound)``: ``bound`` is at least the score of every
    unscored document examined (exactly: every unscored document when ``early_exit`` is
    False).
    """
    dense = scratch.dense
    seen = scratch.seen
    ub = scratch.range_bounds
    stats = scratch.stats
    range_size = block_max.range_size[0]
    mask = np.uint64(0xFFFFFFFFFFFFFFFF) >> np.uint64(64 - range_size)
    stats[STAT_PAIRS] += range_bounds(q_terms, q_vals, block_max, ub)
    factor, slack = bound_margin(q_terms.shape[0])
    ok = True
    bound = 0.0
    for r in range(ub.shape[0]):
        u = ub[r]
        if u <= 0.0:
            continue
        unseen = _unseen(seen, r * range_size, mask)
        if unseen == 0:
            continue
        b = u * factor + slack
        if full and b < theta:
            bound = max(bound, b)
            continue
        stats[STAT_RANGES] += 1
        good, bound = _verify_docs(
            r * range_size, unseen, dense, forward, allowed, full, theta, theta_row,
            early_exit, stats, bound,
        )  # fmt: skip
        ok = ok and good
        if not ok and early_exit:
            break
    if (ok or not early_exit) and (not full or theta <= slack):
        for j in range(q_terms.shape[0]):
            t = q_terms[j]
            for p in range(block_max.term_ranges[t], block_max.term_ranges[t + 1]):
                r = block_max.ranges[p]
                if ub[r] != 0.0:
                    continue
                ub[r] = -1.0
                unseen = _unseen(seen, r * range_size, mask)
                good, bound = _verify_docs(
                    r * range_size, unseen, dense, forward, allowed, full, theta,
                    theta_row, early_exit, stats, max(bound, slack),
                )  # fmt: skip
                ok = ok and good
    ub[:] = 0.0
    return ok, bound
