"""Seeded SPLADE-like sparse matrices for the index tests."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp


def zipf_splade(n_rows: int, dim: int, mean_nnz: int, seed: int, f16: bool = True) -> sp.csr_array:
    """Rows with Zipf-distributed terms and log-normal weights, like SPLADE output.

    With ``f16`` the weights are exactly representable in float16, so the index's
    float16 forward index scores them bit-identically to exact search.
    """
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, dim + 1, dtype=np.float64)
    p = ranks**-1.1
    p /= p.sum()
    perm = rng.permutation(dim)
    rows, cols, vals = [], [], []
    for r in range(n_rows):
        n = max(1, int(rng.poisson(mean_nnz)))
        terms = np.unique(perm[rng.choice(dim, size=min(n, dim), p=p)])
        w = rng.lognormal(mean=-0.3, sigma=0.7, size=terms.size)
        rows.append(np.full(terms.size, r))
        cols.append(terms)
        vals.append(w)
    data = np.concatenate(vals).astype(np.float32)
    if f16:
        data = data.astype(np.float16).astype(np.float32)
    m = sp.csr_array((data, (np.concatenate(rows), np.concatenate(cols))), shape=(n_rows, dim))
    m.sort_indices()
    return m


@pytest.fixture(scope="module")
def corpus() -> tuple[sp.csr_array, sp.csr_array]:
    """3,000 documents and 60 queries over a 2,000-term vocabulary."""
    docs = zipf_splade(3000, 2000, 40, seed=1)
    queries = zipf_splade(60, 2000, 15, seed=2)
    return docs, queries


def topical_splade(
    n_docs: int, n_queries: int, dim: int, n_topics: int, doc_nnz: int, query_nnz: int, seed: int
) -> tuple[sp.csr_array, sp.csr_array]:
    """Documents and held-out queries about the same topics: each row draws 60% of its
    terms from its topic's own Zipf law over a tenth of the vocabulary, the rest from a
    global Zipf background; float16-representable log-normal weights. Unlike
    :func:`zipf_splade` rows, a query's terms co-occur in documents, as real ones do."""
    rng = np.random.default_rng(seed)
    zipf = np.arange(1, dim + 1, dtype=np.float64) ** -1.1
    zipf /= zipf.sum()
    background = rng.permutation(dim)
    width = max(1, dim // 10)
    topic_p = np.arange(1, width + 1, dtype=np.float64) ** -1.0
    topic_p /= topic_p.sum()
    topics = [rng.permutation(dim)[:width] for _ in range(n_topics)]

    def rows(n: int, nnz: int) -> sp.csr_array:
        r, c, v = [], [], []
        for i in range(n):
            m = max(1, int(rng.poisson(nnz)))
            own = rng.binomial(m, 0.6)
            terms = np.unique(
                np.concatenate([
                    topics[rng.integers(n_topics)][rng.choice(width, own, p=topic_p)],
                    background[rng.choice(dim, m - own, p=zipf)],
                ])
            )  # fmt: skip
            r.append(np.full(terms.size, i))
            c.append(terms)
            v.append(rng.lognormal(-0.3, 0.7, terms.size))
        data = np.concatenate(v).astype(np.float16).astype(np.float32)
        out = sp.csr_array((data, (np.concatenate(r), np.concatenate(c))), shape=(n, dim))
        out.sort_indices()
        return out

    return rows(n_docs, doc_nnz), rows(n_queries, query_nnz)
