"""BM25 as a sparse encoder, so the Seismic index serves it beside the learned encoders.

A document's vector holds, for each term it contains, its BM25 term weight
``idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))`` (Lucene's variant:
``idf = log(1 + (N - df + 0.5) / (df + 0.5))``, k1 = 0.9, b = 0.4 as in Anserini's BEIR runs);
a query's vector holds each of its terms with its count in the query. Their inner product is
the BM25 score, the same as ``bm25s`` gives with ``method="lucene"`` (the eval's baseline) when
the analyser is the same: ``bm25s.tokenize`` (lower case, ``\\b\\w\\w+\\b``, English stop words)
with PyStemmer's English (Snowball) stemmer.

The corpus statistics (document frequencies, N, average length, the vocabulary of stemmed
terms = the columns) are fitted once on the collection's texts, ``enc.fit(texts)``, and saved
next to it as a model directory (``enc.save(dir)``: ``lsr_encoder.json`` + ``bm25_stats.json.gz``;
``load_encoder(dir)`` reads it). Texts encoded later are weighted with those statistics and
their terms outside the vocabulary are dropped: refit and re-encode when a collection drifts.
``load_encoder("bm25")`` gives an unfitted encoder (analyser and k1 / b only).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from encoders.base import SparseEncoder, csr_from_parts, empty_csr, validate_texts
from encoders.config import EncoderConfig
from encoders.errors import EncoderError, ModelNotFoundError

STATS_FILE = "bm25_stats.json.gz"


@dataclass(frozen=True)
class BM25Settings:
    """Scoring and analysis: Lucene's k1 / b, a PyStemmer language (None: no stemming) and a
    ``bm25s`` stop-word list; the defaults are the eval's baseline (app/jobs/evaluation/bm25.py)."""

    k1: float = 0.9
    b: float = 0.4
    stemmer: str | None = "english"
    stopwords: str | None = "en"

    def __post_init__(self) -> None:
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise EncoderError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got {self.k1}, {self.b}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BM25Settings:
        return cls(**{k: data[k] for k in ("k1", "b", "stemmer", "stopwords") if k in data})


@dataclass
class BM25Stats:
    """Corpus statistics: ``vocab`` (stemmed terms, the columns), ``df`` (V,) int64
    documents holding each term, ``n_docs`` and ``avgdl`` (mean analysed length)."""

    vocab: list[str]
    df: np.ndarray
    n_docs: int
    avgdl: float
    _column: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.df = np.asarray(self.df, np.int64)
        if len(self.vocab) != len(self.df):
            raise EncoderError(f"{len(self.vocab)} terms but {len(self.df)} frequencies")
        self._column = {term: i for i, term in enumerate(self.vocab)}

    def columns(self, terms: Sequence[str]) -> np.ndarray:
        """Column of each term, -1 where it is not in the vocabulary; (len(terms),) int64."""
        get = self._column.get
        return np.fromiter((get(t, -1) for t in terms), np.int64, len(terms))

    def idf(self) -> np.ndarray:
        """Lucene's idf per column, (V,) float64."""
        return np.log1p((self.n_docs - self.df + 0.5) / (self.df + 0.5))

    def save(self, path: Path) -> Path:
        data = {
            "n_docs": self.n_docs,
            "avgdl": self.avgdl,
            "vocab": self.vocab,
            "df": self.df.tolist(),
        }
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            json.dump(data, fh, separators=(",", ":"))
        return path

    @classmethod
    def load(cls, path: Path) -> BM25Stats:
        try:
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                data = json.load(fh)
            return cls(data["vocab"], np.array(data["df"]), int(data["n_docs"]), data["avgdl"])
        except (OSError, ValueError, KeyError) as exc:
            raise ModelNotFoundError(f"cannot read BM25 statistics {path}: {exc}") from exc


def analyse(texts: list[str], settings: BM25Settings) -> list[list[str]]:
    """Stemmed terms of each text, stop words removed: ``bm25s.tokenize``, as the eval."""
    import bm25s

    if not texts:
        return []
    stemmer = None
    if settings.stemmer:
        import Stemmer

        stemmer = Stemmer.Stemmer(settings.stemmer)
    return bm25s.tokenize(
        texts,
        stopwords=settings.stopwords or [],
        stemmer=stemmer,
        return_ids=False,
        show_progress=False,
    )


def term_counts(
    docs: list[list[str]], stats: BM25Stats
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per text: rows, columns (ascending within a row), counts of its in-vocabulary terms,
    and every text's analysed length (out-of-vocabulary terms included); int64 arrays."""
    lengths = np.fromiter((len(d) for d in docs), np.int64, len(docs))
    cols = stats.columns([t for d in docs for t in d])
    rows = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
    keep = cols >= 0
    width = max(1, len(stats.vocab))
    keys, counts = np.unique(rows[keep] * width + cols[keep], return_counts=True)
    return keys // width, keys % width, counts, lengths


class BM25Encoder(SparseEncoder):
    """Documents -> BM25 term weights, queries -> term counts, over a fitted vocabulary."""

    def __init__(self, settings: BM25Settings | None = None, stats: BM25Stats | None = None):
        self.settings = settings or BM25Settings()
        self.stats = stats

    def fit(self, texts: Sequence[str]) -> BM25Encoder:
        """Fit the corpus statistics on ``texts`` (the collection's documents); returns self."""
        docs = analyse(validate_texts(texts), self.settings)
        if not docs:
            raise EncoderError("BM25 needs at least one document to fit on")
        vocab = sorted({t for d in docs for t in d})
        stats = BM25Stats(vocab, np.zeros(len(vocab), np.int64), len(docs), 0.0)
        _, cols, _, lengths = term_counts(docs, stats)  # one (text, term) pair per holder
        stats.df = np.bincount(cols, minlength=len(vocab)).astype(np.int64)
        stats.avgdl = float(lengths.mean())
        self.stats = stats
        return self

    def _fitted(self) -> BM25Stats:
        if self.stats is None:
            raise EncoderError(
                "this BM25 encoder has no corpus statistics: call fit(texts) on the collection "
                "(and save(dir) to keep them), or load a fitted model directory"
            )
        return self.stats

    @property
    def dim(self) -> int:
        return len(self._fitted().vocab)

    @property
    def feature_names(self) -> list[str]:
        return list(self._fitted().vocab)

    def encode_documents(self, texts: Sequence[str], **_: object) -> sp.csr_array:
        """(len(texts), dim) BM25 weights: ``idf * tf / (tf + k1 (1 - b + b dl / avgdl))``."""
        stats, s = self._fitted(), self.settings
        texts = validate_texts(texts)
        if not texts:
            return empty_csr(0, self.dim)
        rows, cols, tf, lengths = term_counts(analyse(texts, s), stats)
        norm = s.k1 * (1 - s.b + s.b * lengths[rows] / max(stats.avgdl, 1e-12))
        weights = stats.idf()[cols] * tf / (tf + norm)
        return csr_from_parts(np.bincount(rows, minlength=len(texts)), cols, weights, self.dim)

    def encode_queries(self, texts: Sequence[str], **_: object) -> sp.csr_array:
        """(len(texts), dim) term counts: a query term said twice counts twice, as in bm25s."""
        stats = self._fitted()
        texts = validate_texts(texts)
        if not texts:
            return empty_csr(0, self.dim)
        rows, cols, counts, _ = term_counts(analyse(texts, self.settings), stats)
        return csr_from_parts(np.bincount(rows, minlength=len(texts)), cols, counts, self.dim)

    def save(self, model_dir: str | Path) -> Path:
        """Write a self-describing model directory: ``lsr_encoder.json`` + the statistics."""
        stats = self._fitted()
        out = Path(model_dir)
        out.mkdir(parents=True, exist_ok=True)
        stats.save(out / STATS_FILE)
        EncoderConfig(
            type="bm25",
            description=f"BM25 (Lucene, k1 {self.settings.k1}, b {self.settings.b}) fitted on "
            f"{stats.n_docs} documents, {len(stats.vocab)} terms",
            extra={**asdict(self.settings), "stats_file": STATS_FILE},
        ).save(out)
        return out


def load_bm25(model_dir: Path, config: dict[str, Any], **options: Any) -> BM25Encoder:
    """Loader for ``type: bm25``: fitted when the directory holds its statistics file.
    ``options``: ``k1``, ``b`` override the saved ones; device / dtype options are ignored."""
    cfg = EncoderConfig.from_dict(config)
    saved = {k: v for k, v in cfg.extra.items() if k != "stats_file"}
    overrides = {k: options[k] for k in ("k1", "b") if options.get(k) is not None}
    settings = BM25Settings.from_dict({**saved, **overrides})
    stats_file = Path(model_dir) / str(cfg.extra.get("stats_file", STATS_FILE))
    stats = BM25Stats.load(stats_file) if stats_file.is_file() else None
    return BM25Encoder(settings, stats)
