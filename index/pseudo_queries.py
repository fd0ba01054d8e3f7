"""Pseudo-queries drawn from the indexed documents, for calibration without real queries.

A real query is a short text that is *not* in the collection: it shares some of its terms
with the documents it matches, and SPLADE weighs a term by its context, so its weights
are not any one document's. A pseudo-query therefore takes a document's terms, not its
weights:

* a uniform random subset of at most ``n_terms`` (32: SPLADE queries carry ~30 terms; a
  short document keeps all of its own) of the terms of a random document;
* each term's weight drawn afresh from that term's own weight distribution over the
  collection (log-normal with the mean and standard deviation of its log-weights), so the
  query is not a copy of its source and the source is no nearest neighbour by design;
* the source document is left out of the ground truth and of the answer when recall is
  measured (search ``k + 1``, drop the source row from both).

Measured against the real queries of the shared vectors (README, "Calibration"), these
predict Recall@10 per setting closer than document copies, top-term truncations or
weight-sampled subsets: the copies' own weights make the source's block an easy anchor.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from index.kernels.moments import term_log_moments
from index.layout import ForwardIndex

# Terms per pseudo-query (at most; shorter documents give all of theirs).
PSEUDO_TERMS = 32
# Weights stay in the range the index stores (float16).
_MAX_WEIGHT = 65504.0


def doc_vector(forward: ForwardIndex, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Internal document ``d``'s ``(terms int32, weights float32)`` from the forward index."""
    a, b = int(forward.offsets[d]), int(forward.offsets[d + 1])
    if forward.packed.shape[0]:
        raw = np.asarray(forward.packed[a:b])
        return (raw >> 16).astype(np.int32), (raw & 0xFFFF).astype(np.uint16).view(
            np.float16
        ).astype(np.float32)
    terms = np.asarray(forward.terms[a:b], dtype=np.int32)
    return terms, np.asarray(forward.values[a:b]).view(np.float16).astype(np.float32)


def pseudo_queries(
    forward: ForwardIndex, dim: int, n: int, seed: int = 0, n_terms: int = PSEUDO_TERMS
) -> tuple[sp.csr_array, np.ndarray]:
    """``n`` pseudo-queries (CSR float32, ``dim`` columns) and their source documents'
    caller rows (int64 (n,)), reproducible from ``seed``. Documents without a positive
    weight are never sources."""
    _, mean, std = term_log_moments(forward.packed, forward.terms, forward.values, dim)
    rng = np.random.default_rng(seed)
    n_docs = int(forward.offsets.shape[0]) - 1
    lengths = np.diff(np.asarray(forward.offsets))
    candidates = np.flatnonzero(lengths > 0)
    if candidates.size == 0:
        raise ValueError("no document has a term: nothing to draw pseudo-queries from")
    rows, cols, vals, sources = [], [], [], []
    attempts = 0
    while len(sources) < n and attempts < 20 * n + 100:
        attempts += 1
        d = int(candidates[rng.integers(candidates.size)])
        terms, weights = doc_vector(forward, d)
        terms = terms[weights > 0]
        if terms.size == 0:
            continue
        pick = np.sort(rng.choice(terms.size, size=min(n_terms, terms.size), replace=False))
        t = terms[pick]
        w = np.exp(rng.normal(mean[t], std[t])).clip(1e-6, _MAX_WEIGHT).astype(np.float32)
        rows.append(np.full(t.size, len(sources)))
        cols.append(t)
        vals.append(w)
        sources.append(int(forward.doc_rows[d]))
    if not sources:
        raise ValueError(f"could not draw pseudo-queries from {n_docs} documents")
    matrix = sp.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(sources), dim),
    )
    matrix.sort_indices()
    return matrix, np.asarray(sources, dtype=np.int64)
