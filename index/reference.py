"""Plain NumPy twins of the Numba kernels, for tests: slow, obvious, no shared code.

Each function mirrors one kernel in :mod:`index.kernels` on the same inputs.
"""

from __future__ import annotations

import numpy as np

MASK64 = (1 << 64) - 1


def transpose_csr(indptr, indices, data, n_cols):
    """Twin of :func:`index.kernels.exact.transpose_csr`."""
    rows = np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr))
    order = np.lexsort((rows, indices))
    offsets = np.concatenate([[0], np.cumsum(np.bincount(indices, minlength=n_cols))])
    return offsets.astype(np.int64), rows[order].astype(np.int32), data[order].astype(np.float32)


def prune_lists(offsets, rows, values, threshold, cap):
    """Twin of :func:`index.kernels.pruning.prune_lists`."""
    new_off, out_r, out_v = [0], [], []
    for t in range(offsets.shape[0] - 1):
        r = rows[offsets[t] : offsets[t + 1]]
        v = values[offsets[t] : offsets[t + 1]]
        keep = np.flatnonzero(v >= threshold)
        if keep.size > cap:
            keep = np.sort(keep[np.lexsort((r[keep], -v[keep]))][:cap])
        out_r.extend(r[keep].tolist())
        out_v.extend(v[keep].tolist())
        new_off.append(len(out_r))
    return (
        np.asarray(new_off, np.int64),
        np.asarray(out_r, np.int32),
        np.asarray(out_v, np.float32),
    )


def doc_top_terms(indptr, indices, data, doc_cut):
    """Twin of :func:`index.kernels.pruning.doc_top_terms` (as sets per row)."""
    out = []
    for r in range(indptr.shape[0] - 1):
        t = indices[indptr[r] : indptr[r + 1]]
        v = data[indptr[r] : indptr[r + 1]]
        order = np.lexsort((np.arange(t.size), -v))[:doc_cut]
        out.append(sorted(zip(t[order].tolist(), v[order].tolist(), strict=True)))
    return out


def block_summary(rows, indptr, indices, data, alpha):
    """Twin of :func:`index.kernels.summaries.block_summary`: ``(terms ascending, values)``."""
    mx: dict[int, float] = {}  # insertion order = first-seen order, as in the kernel
    for r in rows:
        for t, v in zip(
            indices[indptr[r] : indptr[r + 1]], data[indptr[r] : indptr[r + 1]], strict=True
        ):
            mx[int(t)] = max(mx.get(int(t), 0.0), float(np.float32(v)))
    total = 0.0
    for v in mx.values():
        total += v
    desc = np.sort(np.array(list(mx.values()), dtype=np.float32))[::-1]
    running = np.cumsum(desc.astype(np.float64))
    reached = np.flatnonzero(running >= alpha * total)
    cut = desc[reached[0] if reached.size else -1] if desc.size else 0.0
    terms = np.array(sorted(t for t, v in mx.items() if v >= cut), dtype=np.int64)
    return terms, np.array([mx[t] for t in terms], dtype=np.float32)


def quantize(values):
    """Twin of :func:`index.kernels.summaries.quantize`: ``(codes, min, scale)``."""
    lo = np.float32(values.min())
    scale = (np.float32(values.max()) - lo) / np.float32(255.0)
    if scale > 0:
        codes = np.minimum(255, np.floor((values - lo) / scale + 0.5)).astype(np.uint8)
    else:
        codes = np.zeros(values.shape, np.uint8)
    return codes, lo, scale


def list_block_scores(lists, summaries, t: int, q_terms, q_vals) -> np.ndarray:
    """Summary scores of list ``t``'s blocks, decoded from the stored (term-major,
    bit-packed block ids) layout one entry at a time; twin of
    :func:`index.kernels.block_scores.list_block_scores`."""
    lb, ls = lists.list_blocks, summaries.list_terms
    nb = int(lb[t + 1] - lb[t])
    e_base = int(summaries.list_entries[t])
    n_entries = int(summaries.list_entries[t + 1]) - e_base
    width = max(1, int(np.ceil(np.log2(max(nb, 1)))))
    y_base = int(summaries.list_block_bytes[t])
    raw = summaries.entry_blocks
    q = dict(zip(q_terms.tolist(), q_vals.tolist(), strict=True))
    acc = np.zeros(nb, np.float64)
    qsum = np.zeros(nb, np.float64)
    for i in range(int(ls[t]), int(ls[t + 1])):
        term = int(summaries.terms[i])
        if term not in q:
            continue
        e0 = int(summaries.term_entries[i])
        e1 = int(summaries.term_entries[i + 1]) if i + 1 < ls[t + 1] else n_entries
        for e in range(e0, e1):
            pos = e * width
            chunk = int.from_bytes(
                bytes(raw[y_base + pos // 8 : y_base + pos // 8 + 4].tolist()), "little"
            )
            b = (chunk >> (pos % 8)) & ((1 << width) - 1)
            acc[b] += q[term] * float(summaries.codes[e_base + e])
            qsum[b] += q[term]
    bmin = summaries.block_min[lb[t] : lb[t + 1]].astype(np.float64)
    bscale = summaries.block_scale[lb[t] : lb[t + 1]].astype(np.float64)
    return bmin * qsum + bscale * acc


def dot_in_kernel_order(dense, terms, values) -> np.float32:
    """Twin of :func:`index.kernels.forward.forward_dot`: float32 products summed into four
    partials (entry ``j`` to partial ``j % 4``, a tail of fewer than four to the first),
    then ``(s0 + s1) + (s2 + s3)``."""
    products = [np.float32(dense[t]) * np.float32(v) for t, v in zip(terms, values, strict=True)]
    partial = [np.float32(0.0)] * 4
    full = len(products) - len(products) % 4
    for j in range(full):
        partial[j % 4] = np.float32(partial[j % 4] + products[j])
    for j in range(full, len(products)):
        partial[0] = np.float32(partial[0] + products[j])
    return np.float32(np.float32(partial[0] + partial[1]) + np.float32(partial[2] + partial[3]))


def exact_topk(docs, queries, k):
    """Twin of :func:`index.exact_search` on dense arrays: ``(ids, scores)``."""
    scores = queries.astype(np.float64) @ docs.T.astype(np.float64)
    ids = np.full((queries.shape[0], k), -1, np.int64)
    out = np.zeros((queries.shape[0], k), np.float64)
    for i, row in enumerate(scores):
        touched = np.flatnonzero((queries[i] > 0) @ (docs.T > 0))
        order = touched[np.lexsort((touched, -row[touched]))][:k]
        ids[i, : order.size] = order
        out[i, : order.size] = row[order]
    return ids, out


def splitmix64(state: int) -> tuple[int, int]:
    """Twin of :func:`index.kernels.blocking.splitmix64` on Python ints."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def sample_positions(n: int, m: int, seed: int) -> np.ndarray:
    """Twin of :func:`index.kernels.blocking.sample_positions`."""
    perm = list(range(n))
    state = seed
    for i in range(m):
        state, r = splitmix64(state)
        j = i + r % (n - i)
        perm[i], perm[j] = perm[j], perm[i]
    return np.sort(np.asarray(perm[:m], dtype=np.int64))


def block_max(indptr, indices, data, order, range_size):
    """Twin of :func:`index.block_max.build_block_max` before quantisation: for every term
    (ascending) the ranges it occurs in and its largest weight there, as
    ``(term_ranges int64 (dim+1,), ranges int64, maxima float32)``; ``data`` holds the
    float16-representable weights, ``order[i]`` the input row of internal document ``i``."""
    best: dict[tuple[int, int], float] = {}
    for i, row in enumerate(order):
        r = i // range_size
        for t, w in zip(
            indices[indptr[row] : indptr[row + 1]], data[indptr[row] : indptr[row + 1]], strict=True
        ):
            key = (int(t), r)
            best[key] = max(best.get(key, -1.0), float(w))
    keys = sorted(best)
    dim = int(max([t for t, _ in keys], default=-1)) + 1
    counts = np.bincount([t for t, _ in keys], minlength=dim) if keys else np.zeros(0, np.int64)
    return (
        np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        np.array([r for _, r in keys], np.int64),
        np.array([best[key] for key in keys], np.float32),
    )


def range_bounds(block_max, q_terms, q_vals, n_ranges):
    """Twin of :func:`index.kernels.bounds.range_bounds`: float32 (n_ranges,) sums taken in
    query-term order."""
    ub = np.zeros(n_ranges, np.float32)
    for t, v in zip(q_terms.tolist(), q_vals.tolist(), strict=True):
        qs = np.float32(np.float32(v) * block_max.scales[t])
        for p in range(int(block_max.term_ranges[t]), int(block_max.term_ranges[t + 1])):
            r = int(block_max.ranges[p])
            ub[r] = np.float32(ub[r] + np.float32(qs * np.float32(block_max.codes[p])))
    return ub


def safe_bounds(ub, nq):
    """The float64 bounds :mod:`index.kernels.bounds` compares with scores, from the
    float32 ``ub`` of a query of ``nq`` terms (see ``bound_margin``)."""
    factor = 1.0 + (2.0 * nq + 8.0) * 2.0**-23
    slack = (nq + 1.0) * 2.0**-140
    return np.where(ub > 0, ub.astype(np.float64) * factor + slack, slack)


def brute_topk(fwd_terms, fwd_values, doc_rows, q_terms, q_vals, k, allowed=None):
    """Exact top-k by scoring every document in the forward index's four-partial-sum
    order (:func:`dot_in_kernel_order`): ``(rows int64 (k,), scores float32 (k,))``, ties
    to the lower caller row, only documents sharing a term, -1 / 0.0 pads. ``fwd_terms``
    / ``fwd_values``: one array per internal document."""
    dim = max([int(t.max()) for t in fwd_terms if t.size] + [int(max(q_terms, default=0))]) + 1
    dense = np.zeros(dim, np.float32)
    dense[np.asarray(q_terms, np.int64)] = q_vals
    hits = []
    for d, (t, v) in enumerate(zip(fwd_terms, fwd_values, strict=True)):
        row = int(doc_rows[d])
        if allowed is not None and not allowed[row]:
            continue
        if not np.any(dense[t] != 0):
            continue
        hits.append((-float(dot_in_kernel_order(dense, t, v)), row))
    hits.sort()
    rows = np.full(k, -1, np.int64)
    scores = np.zeros(k, np.float32)
    for j, (s, row) in enumerate(hits[:k]):
        rows[j] = row
        scores[j] = np.float32(-s)
    return rows, scores


def term_log_moments(terms, values, dim):
    """Twin of :func:`index.kernels.moments.term_log_moments` (zero weights left out)."""
    keep = values > 0
    t = np.asarray(terms)[keep]
    x = np.log(np.asarray(values, np.float64)[keep])
    count = np.bincount(t, minlength=dim)
    mean = np.bincount(t, x, minlength=dim) / np.maximum(count, 1)
    var = np.bincount(t, x * x, minlength=dim) / np.maximum(count, 1) - mean**2
    return count, mean, np.sqrt(np.maximum(var, 0.0))
