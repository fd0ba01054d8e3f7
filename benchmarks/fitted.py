"""A synthetic SPLADE-like corpus fitted to real vectors, drawn chunk by chunk.

Fitted to a set of real documents (the shared splade-tiny vectors):
- lengths: the real documents' lengths resampled and scaled to the target mean,
  stochastically rounded (the mean is kept), at least 1;
- terms: each document draws its ``length`` distinct terms one by one without
  replacement, with per-term sampling weights calibrated (iterative proportional fitting
  on a sample) so that each term's document frequency matches the real one scaled by
  ``target mean / real mean``; plain df-proportional weights would flatten the head
  (the most frequent term would hold 52% of documents instead of 73%);
- weights: per term, a uniform draw among that term's real weights (its empirical
  distribution: head terms keep their low weights, rare terms their high ones).
Terms are drawn independently of each other: co-occurrence is not modelled, so block
summaries are less selective than on real data (a harder corpus, not an easier one).
Each chunk has its own seed, so a chunk's rows do not depend on the chunks before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numba import njit


@njit(cache=True, nogil=True)
def draw_rows(
    indptr: np.ndarray,
    alias_prob: np.ndarray,
    alias_idx: np.ndarray,
    pool_offsets: np.ndarray,
    pool_values: np.ndarray,
    seed: int,
    out_terms: np.ndarray,
    out_values: np.ndarray,
) -> None:
    """Fill rows of a CSR chunk: distinct terms by the alias table, sorted, with weights.

    indptr int64 (rows + 1,); alias_prob float64 (dim,), alias_idx int64 (dim,): Walker's
    alias table of the term weights; pool_offsets int64 (dim + 1,), pool_values float32:
    each term's real weights; out_terms int32 (nnz,), out_values float32 (nnz,).
    """
    np.random.seed(seed)
    dim = alias_prob.shape[0]
    seen = np.full(dim, -1, dtype=np.int64)
    for r in range(indptr.shape[0] - 1):
        a, b = indptr[r], indptr[r + 1]
        got = a
        while got < b:
            k = np.random.randint(0, dim)
            t = k if np.random.random() < alias_prob[k] else alias_idx[k]
            if seen[t] != r:
                seen[t] = r
                out_terms[got] = t
                got += 1
        out_terms[a:b] = np.sort(out_terms[a:b])
        for j in range(a, b):
            t = out_terms[j]
            lo = pool_offsets[t]
            out_values[j] = pool_values[lo + np.random.randint(0, pool_offsets[t + 1] - lo)]


def alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table of non-negative ``weights``: (prob float64, alias int64)."""
    n = weights.shape[0]
    scaled = weights.astype(np.float64) * (n / weights.sum())
    prob = np.zeros(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int64)
    small = [int(i) for i in np.flatnonzero(scaled < 1.0)]
    large = [int(i) for i in np.flatnonzero(scaled >= 1.0)]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    top = int(np.argmax(weights))
    for i in large + small:  # left over by rounding: whole, unless never to be drawn
        prob[i], alias[i] = (1.0, i) if weights[i] > 0 else (0.0, top)
    return prob, alias


def chunk_seed(seed: int, chunk_no: int) -> int:
    return int(np.random.SeedSequence([seed, 1, chunk_no]).generate_state(1)[0])


@dataclass
class FittedModel:
    """Distributions fitted to real documents; see the module docstring."""

    lengths: np.ndarray  # int64 (n_real,): real document lengths
    mean_nnz: float  # target mean length
    target_df: np.ndarray  # float64 (dim,): target share of documents holding each term
    term_weights: np.ndarray  # float64 (dim,): calibrated sampling weights
    pool_offsets: np.ndarray  # int64 (dim + 1,): term t's real weights are
    pool_values: np.ndarray  # float32 (nnz,):   pool_values[pool_offsets[t]:pool_offsets[t+1]]
    fit_error: dict

    @classmethod
    def fit(
        cls,
        docs: sp.csr_array,
        mean_nnz: float,
        iterations: int = 12,
        sample_docs: int = 20_000,
        seed: int = 0,
    ) -> FittedModel:
        """Fit to ``docs``; calibrate term weights on ``sample_docs`` drawn documents."""
        csc = sp.csc_array(docs)
        csc.sort_indices()
        df = np.diff(csc.indptr).astype(np.float64)
        lengths = np.diff(docs.indptr).astype(np.int64)
        target = np.minimum(df / docs.shape[0] * (mean_nnz / lengths.mean()), 0.999)
        model = cls(
            lengths,
            float(mean_nnz),
            target,
            target.copy(),
            csc.indptr.astype(np.int64),
            csc.data.astype(np.float32),
            {},
        )
        for it in range(iterations):
            got = model.sample_df(sample_docs, seed + it)
            ratio = np.divide(target, got, out=np.ones_like(target), where=got > 0)
            model.term_weights = model.term_weights * np.clip(ratio, 0.5, 2.0)
        got = model.sample_df(4 * sample_docs, seed + iterations)
        head = np.argsort(-target)[:100]
        model.fit_error = {
            "sample_docs": 4 * sample_docs,
            "head100_df_mean_abs_error": float(np.abs(got[head] - target[head]).mean()),
            "head100_df_target_mean": float(target[head].mean()),
            "top_term_df": [float(target[head[0]]), float(got[head[0]])],
            "df_correlation": float(np.corrcoef(got, target)[0, 1]),
        }
        return model

    @property
    def dim(self) -> int:
        return int(self.target_df.shape[0])

    @property
    def support(self) -> int:
        return int(np.count_nonzero(self.term_weights))

    def draw_lengths(self, n_docs: int, seed: int) -> np.ndarray:
        """int64 (n_docs,): real lengths resampled, scaled to mean ``mean_nnz``."""
        rng = np.random.default_rng([seed, 0])
        scaled = self.lengths[rng.integers(0, self.lengths.shape[0], n_docs)] * (
            self.mean_nnz / self.lengths.mean()
        )
        floor = np.floor(scaled)
        out = floor.astype(np.int64) + (rng.random(n_docs) < scaled - floor)
        return np.clip(out, 1, self.support)

    def chunk(
        self,
        lengths: np.ndarray,
        seed: int,
        chunk_no: int,
        table: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> sp.csr_array:
        """Rows of the given lengths (float32 values, int32 sorted indices); ``table`` is
        ``alias_table(self.term_weights)`` when the caller keeps it."""
        prob, alias = alias_table(self.term_weights) if table is None else table
        indptr = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        terms = np.empty(indptr[-1], dtype=np.int32)
        values = np.empty(indptr[-1], dtype=np.float32)
        draw_rows(
            indptr,
            prob,
            alias,
            self.pool_offsets,
            self.pool_values,
            chunk_seed(seed, chunk_no),
            terms,
            values,
        )
        return sp.csr_array((values, terms, indptr), shape=(lengths.shape[0], self.dim))

    def sample_df(self, n_docs: int, seed: int) -> np.ndarray:
        """Share of ``n_docs`` drawn documents holding each term."""
        rows = self.chunk(self.draw_lengths(n_docs, seed), seed, 0)
        return np.bincount(rows.indices, minlength=self.dim) / n_docs


@dataclass
class Generated:
    """``n_docs`` rows drawn from ``model``, lengths fixed up front (so nnz is known)."""

    model: FittedModel
    lengths: np.ndarray
    seed: int
    chunk_rows: int
    table: tuple[np.ndarray, np.ndarray]

    @classmethod
    def make(cls, model: FittedModel, n_docs: int, seed: int, chunk_rows: int) -> Generated:
        lengths = model.draw_lengths(n_docs, seed)
        return cls(model, lengths, seed, chunk_rows, alias_table(model.term_weights))

    @property
    def n_docs(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def nnz(self) -> int:
        return int(self.lengths.sum())

    @property
    def dim(self) -> int:
        return self.model.dim

    def rows(self, start: int, stop: int) -> sp.csr_array:
        """Rows ``[start, stop)``; ``start`` must be a multiple of ``chunk_rows``."""
        if start % self.chunk_rows or stop - start > self.chunk_rows:
            raise ValueError("generated rows come in whole chunks of chunk_rows")
        number = start // self.chunk_rows
        return self.model.chunk(self.lengths[start:stop], self.seed, number, self.table)
