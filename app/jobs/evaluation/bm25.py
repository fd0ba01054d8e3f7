"""BM25 baseline with ``bm25s`` and PyStemmer, set up like BEIR's Anserini runs (title + text,
English stop words and Snowball stemming, Lucene scoring with k1 = 0.9, b = 0.4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BM25Params:
    """Anserini's BEIR defaults; ``stemmer`` is a PyStemmer language, ``stopwords`` a bm25s list."""

    k1: float = 0.9
    b: float = 0.4
    method: str = "lucene"
    stemmer: str = "english"
    stopwords: str = "en"


class BM25Baseline:
    """Index texts once, answer batches of queries with (rows, scores) like the sparse index."""

    def __init__(self, params: BM25Params | None = None) -> None:
        import bm25s
        import Stemmer

        self.params = params or BM25Params()
        self._bm25s = bm25s
        self._stemmer = Stemmer.Stemmer(self.params.stemmer)
        self._model: bm25s.BM25 | None = None
        self.n_docs = 0

    def _tokenize(self, texts: Sequence[str]):  # noqa: ANN202 - bm25s.Tokenized
        return self._bm25s.tokenize(
            list(texts),
            stopwords=self.params.stopwords,
            stemmer=self._stemmer,
            show_progress=False,
        )

    def index(self, texts: Sequence[str]) -> BM25Baseline:
        """Tokenise, stem and index ``texts`` (row i of the answers is ``texts[i]``)."""
        if not texts:
            raise ValueError("BM25 needs at least one document")
        model = self._bm25s.BM25(k1=self.params.k1, b=self.params.b, method=self.params.method)
        model.index(self._tokenize(texts), show_progress=False)
        self._model = model
        self.n_docs = len(texts)
        return self

    def search(self, queries: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows (int64, -1 pads) and scores (float32), shape (len(queries), k)."""
        if self._model is None:
            raise RuntimeError("call index() before search()")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        kk = min(k, self.n_docs)
        rows, scores = self._model.retrieve(self._tokenize(queries), k=kk, show_progress=False)
        out_rows = np.full((len(queries), k), -1, dtype=np.int64)
        out_scores = np.zeros((len(queries), k), dtype=np.float32)
        out_rows[:, :kk] = rows
        out_scores[:, :kk] = scores
        # A query with no indexed term scores 0 everywhere: those are not hits.
        out_rows[out_scores <= 0] = -1
        return out_rows, out_scores
