"""``lsr eval``: exact search, the approximate Seismic index and BM25 on one dataset.

Everything is scored with ``ir_measures`` on the same judged queries; runs are written in TREC
format next to a JSON summary and a markdown report with a recall-vs-latency plot.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from tqdm.auto import tqdm

from app.jobs.corpus import Corpus
from app.jobs.encode import encode_in_chunks, load_job_encoder
from app.jobs.evaluation.bm25 import BM25Baseline
from app.jobs.evaluation.datasets import EvalDataset, load_eval_dataset
from app.jobs.evaluation.metrics import MEASURES, evaluate_run
from app.jobs.evaluation.runs import hits_to_run, write_trec_run

logger = logging.getLogger(__name__)

# (query_cut, heap_factor) points of the recall-vs-latency curve.
DEFAULT_SWEEP: tuple[tuple[int, float], ...] = (
    (3, 0.7), (5, 0.8), (8, 0.9), (10, 0.9), (15, 1.0), (25, 1.0),
)  # fmt: skip


@dataclass
class EvalConfig:
    """What ``lsr eval`` runs; ``max_queries`` takes the first judged queries (quick checks)."""

    dataset: str
    encoder: str = "splade-tiny"
    split: str = "test"
    k: int = 1000
    index_params: dict[str, Any] = field(default_factory=dict)
    query_params: dict[str, Any] = field(default_factory=dict)
    sweep: tuple[tuple[int, float], ...] = DEFAULT_SWEEP
    results_dir: Path | None = None
    output_json: Path | None = None
    batch_size: int | None = None
    device: str | None = None
    bm25: bool = True
    index: bool = True
    latency_queries: int = 1000
    max_queries: int | None = None
    progress: bool = True
    write_runs: bool = True
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.k < 10:
            raise ValueError(f"k must be at least 10 (nDCG@10 needs 10 hits), got {self.k}")
        if (self.batch_size is not None and self.batch_size < 1) or self.latency_queries < 1:
            raise ValueError("batch_size and latency_queries must be >= 1")
        if self.max_queries is not None and self.max_queries < 1:
            raise ValueError(f"max_queries must be >= 1, got {self.max_queries}")


def save_matrix(path: Path, matrix: sparse.csr_array) -> None:
    """Cache a document matrix (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    sparse.save_npz(tmp, sparse.csr_matrix(matrix), compressed=False)
    tmp.replace(path)


def load_matrix(path: Path) -> sparse.csr_array:
    matrix = sparse.csr_array(sparse.load_npz(path))
    matrix.indices = matrix.indices.astype(np.int32)
    matrix.data = matrix.data.astype(np.float32)
    return matrix


def model_files_key(encoder: str) -> str:
    """The content fingerprint of the model behind ``encoder``
    (:func:`encoders.fingerprint.model_fingerprint`: its weights, configs and tokenizer, a CSR
    model's dense model too, not its model card), so a retrained model under the same name
    never reuses stale cached vectors; empty when the model is not found here (a Hugging
    Face id not downloaded yet: never reach for the network for a cache key; the key is then
    the name alone)."""
    from encoders.fingerprint import model_fingerprint_or_none

    return model_fingerprint_or_none(encoder, fetch=False) or ""


def cache_digest(corpus: Corpus, extra: dict[str, Any]) -> str:
    """A cache file's key: the corpus (its description and, for a file, its mtime) and
    ``extra`` (what was computed from it)."""
    describe = corpus.describe()
    path = Path(corpus.source)
    if path.exists():
        describe["mtime"] = str(path.stat().st_mtime_ns)
    key = json.dumps({"corpus": describe, **extra}, sort_keys=True)
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def dense_doc_embeddings(
    cache_dir: Path | None, corpus: Corpus, dense: Any, doc_texts: list[str], *, progress: bool
) -> np.ndarray:
    """(n_docs, dim) float32 embeddings of the documents by the dense model ``dense`` (a
    :class:`encoders.csr_embedder.DenseEmbedder`), cached in ``cache_dir`` by corpus and dense
    model: the dense re-rank and every CSR model over that dense model (general, adapted)
    share them, so a CSR model of its own costs no transformer pass over the corpus."""
    cache = None
    if cache_dir is not None:
        digest = cache_digest(corpus, {"dense": str(dense.model_dir)})
        cache = Path(cache_dir) / f"dense-{digest}.npy"
        if cache.is_file():
            return np.load(cache)
    emb = dense.embed(doc_texts, progress=progress)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.tmp.npy")
        np.save(tmp, emb)
        tmp.replace(cache)
    return emb


def needs_fit(encoder: Any) -> bool:
    """True for an encoder fitted on the corpus (BM25) that has not been fitted yet."""
    return callable(getattr(encoder, "fit", None)) and getattr(encoder, "stats", False) is None


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1e3, q)) if seconds else float("nan")


# Queries of the warm-up batch: enough to take the batch (``prange``) path of a search as
# well as the few-query one, so that no first-use compile falls inside a timed batch.
WARM_BATCH = 64


def warm_search(search: Callable[[sparse.csr_array], Any], queries: sparse.csr_array) -> None:
    """Compile (or load from Numba's cache) every kernel ``search`` will run on ``queries``:
    one query, then a small batch, on the same index with the same ``k`` and parameters."""
    search(queries[:1])
    if queries.shape[0] > 1:
        search(queries[:WARM_BATCH])


def time_per_query(
    search: Callable[[sparse.csr_array], tuple[np.ndarray, np.ndarray]],
    queries: sparse.csr_array,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Run ``search`` one query at a time (after one warm-up call); rows, scores, seconds each."""
    search(queries[:1])  # the one-query path is what is timed here
    rows, scores, seconds = [], [], []
    for i in range(queries.shape[0]):
        one = queries[i : i + 1]
        start = time.perf_counter()
        r, s = search(one)
        seconds.append(time.perf_counter() - start)
        rows.append(r)
        scores.append(s)
    return np.vstack(rows), np.vstack(scores), seconds


def latency_keys(seconds: list[float]) -> dict[str, float]:
    return {
        "latency_mean_ms": float(np.mean(seconds) * 1e3) if seconds else float("nan"),
        "latency_p99_ms": percentile_ms(seconds, 99),
    }


class Evaluation:
    """One evaluation: holds the dataset, encoded matrices, runs and timings while it goes."""

    def __init__(self, config: EvalConfig, encoder: Any | None = None) -> None:
        self.config = config
        self.encoder = encoder
        self.stages: dict[str, float] = {}
        self.runs: dict[str, Any] = {}
        self.result: dict[str, dict[str, float]] = {}
        self.sweep: list[dict[str, float]] = []
        self.meta: dict[str, Any] = {}

    def _stage(self, name: str, start: float) -> None:
        self.stages[name] = round(time.perf_counter() - start, 3)
        logger.info("%s: %.1f s", name, self.stages[name])

    def load(self) -> tuple[EvalDataset, list[str], list[str]]:
        start = time.perf_counter()
        data = load_eval_dataset(self.config.dataset, self.config.split)
        if self.config.max_queries is not None:
            keep = list(data.queries)[: self.config.max_queries]
            data.queries = {qid: data.queries[qid] for qid in keep}
            data.qrels = {qid: data.qrels[qid] for qid in keep}
        docs = list(data.corpus)
        if not docs:
            raise ValueError(f"{self.config.dataset}: the corpus is empty")
        self._stage("load", start)
        self.meta.update(
            dataset=data.name, source=data.meta.get("source", self.config.dataset),
            split=self.config.split, documents=len(docs), judged_queries=len(data.queries),
            queries_total=data.n_queries_total, encoder=self.config.encoder, k=self.config.k,
        )  # fmt: skip
        return data, [d.doc_id for d in docs], [d.text for d in docs]

    def cache_path(self, corpus: Corpus) -> Path | None:
        """Where encoded documents of this corpus + encoder are cached (None: no cache)."""
        if self.config.cache_dir is None:
            return None
        encoder = self.config.encoder
        key = {"encoder": encoder, "model": model_files_key(encoder)}
        return Path(self.config.cache_dir) / f"docs-{cache_digest(corpus, key)}.npz"

    def encode(self, corpus: Corpus, doc_texts: list[str], query_texts: list[str]):  # noqa: ANN201
        start = time.perf_counter()
        if self.encoder is None:
            self.encoder = load_job_encoder(self.config.encoder, self.config.device)
        if needs_fit(self.encoder):  # BM25: corpus statistics come from the documents scored
            self.encoder.fit(doc_texts)
        self._stage("load_encoder", start)
        start = time.perf_counter()
        cache = self.cache_path(corpus)
        if cache is not None and cache.is_file():
            docs = load_matrix(cache)
            self.meta["documents_from_cache"] = str(cache)
        else:
            if hasattr(self.encoder, "sparsify"):  # CSR: codes of the cached dense embeddings
                emb = dense_doc_embeddings(
                    self.config.cache_dir, corpus, self.encoder.embedder, doc_texts,
                    progress=self.config.progress,
                )  # fmt: skip
                docs = self.encoder.encode_documents(doc_texts, embeddings=emb)
            else:
                with tqdm(total=len(doc_texts), desc="encode documents", unit="doc",
                          disable=not self.config.progress) as bar:  # fmt: skip
                    docs = encode_in_chunks(
                        self._encode_fn("encode_documents"), doc_texts, self.encoder.dim,
                        on_chunk=bar.update,
                    )  # fmt: skip
            if cache is not None:
                save_matrix(cache, docs)
        self._stage("encode_documents", start)
        start = time.perf_counter()
        queries = encode_in_chunks(self._encode_fn("encode_queries"), query_texts, self.encoder.dim)
        self._stage("encode_queries", start)
        self.meta["doc_nnz_mean"] = round(float(np.diff(docs.indptr).mean()), 2)
        self.meta["query_nnz_mean"] = round(float(np.diff(queries.indptr).mean()), 2)
        return docs, queries

    def _encode_fn(self, method: str) -> Callable[[list[str]], Any]:
        """The encoder's ``method``, with ``--batch-size`` when one was given (else the
        encoder sizes its own batches)."""
        encode = getattr(self.encoder, method)
        size = self.config.batch_size
        return (lambda texts: encode(texts, batch_size=size)) if size else encode

    def score(self, name: str, qids: list[str], rows: np.ndarray, scores: np.ndarray,
              doc_ids: list[str], qrels: dict) -> dict[str, float]:  # fmt: skip
        run = hits_to_run(qids, rows, scores, doc_ids)
        self.runs[name] = run
        return evaluate_run(qrels, run)

    def run(self) -> dict[str, dict[str, float]]:
        """Run every stage; return the DESIGN.md-shaped result (plus latency keys)."""
        from index import SeismicIndex, exact_search, recall_vs_exact

        cfg = self.config
        data, doc_ids, doc_texts = self.load()
        qids = list(data.queries)
        docs, queries = self.encode(data.corpus, doc_texts, [data.queries[q] for q in qids])
        n_lat = min(cfg.latency_queries, len(qids))
        lat_queries = queries[:n_lat]

        warm_search(lambda q: exact_search(docs, q, k=cfg.k), queries)
        start = time.perf_counter()
        rows, scores = exact_search(docs, queries, k=cfg.k)
        batch_ms = (time.perf_counter() - start) / len(qids) * 1e3
        self.result["exact"] = self.score("exact", qids, rows, scores, doc_ids, data.qrels)
        self.result["exact"]["batch_ms_per_query"] = batch_ms
        exact10, _, seconds = time_per_query(lambda q: exact_search(docs, q, k=10), lat_queries)
        self.result["exact"].update(latency_keys(seconds))
        self._stage("exact_search", start)

        if cfg.index:
            start = time.perf_counter()
            index = SeismicIndex.build(docs, **cfg.index_params)
            self._stage("index_build", start)
            warm_search(lambda q: index.search(q, k=cfg.k, **cfg.query_params), queries)
            start = time.perf_counter()
            rows, scores = index.search(queries, k=cfg.k, **cfg.query_params)
            batch_ms = (time.perf_counter() - start) / len(qids) * 1e3
            self.result["index"] = self.score("index", qids, rows, scores, doc_ids, data.qrels)
            self.result["index"]["batch_ms_per_query"] = batch_ms
            approx10, _, seconds = time_per_query(
                lambda q: index.search(q, k=10, **cfg.query_params), lat_queries
            )
            self.result["index"]["recall_vs_exact@10"] = recall_vs_exact(approx10, exact10)
            self.result["index"].update(latency_keys(seconds))
            self._stage("index_search", start)
            start = time.perf_counter()
            self.run_sweep(index, lat_queries, exact10, qids[:n_lat], doc_ids, data.qrels)
            self._stage("sweep", start)

        if cfg.bm25:
            start = time.perf_counter()
            bm25 = BM25Baseline().index(doc_texts)
            self._stage("bm25_index", start)
            start = time.perf_counter()
            rows, scores = bm25.search([data.queries[q] for q in qids], k=cfg.k)
            elapsed = time.perf_counter() - start
            self.result["bm25"] = self.score("bm25", qids, rows, scores, doc_ids, data.qrels)
            self.result["bm25"]["batch_ms_per_query"] = elapsed / len(qids) * 1e3
            self._stage("bm25_search", start)
        self.write()
        return self.result

    def run_sweep(self, index: Any, queries: sparse.csr_array, exact10: np.ndarray,
                  qids: list[str], doc_ids: list[str], qrels: dict) -> None:  # fmt: skip
        """Recall vs exact @10, nDCG@10 and latency for each (query_cut, heap_factor) point."""
        from index import recall_vs_exact

        sub_qrels = {q: qrels[q] for q in qids}
        for query_cut, heap_factor in self.config.sweep:
            params = {"query_cut": query_cut, "heap_factor": heap_factor}
            rows, scores, seconds = time_per_query(
                lambda q, p=params: index.search(q, k=10, **p), queries
            )
            run = hits_to_run(qids, rows, scores, doc_ids)
            point = {
                **params,
                "recall_vs_exact@10": recall_vs_exact(rows, exact10),
                "nDCG@10": evaluate_run(sub_qrels, run)["nDCG@10"],
                **latency_keys(seconds),
            }
            self.sweep.append(point)

    def write(self) -> None:
        """The DESIGN-shaped JSON, and with ``results_dir`` runs, details, report and plot."""
        from app.jobs.evaluation.report import write_report

        if self.config.output_json is not None:
            path = Path(self.config.output_json)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.result, indent=2) + "\n")
        if self.config.results_dir is not None:
            out = Path(self.config.results_dir)
            for name, run in self.runs.items():
                if self.config.write_runs:
                    write_trec_run(out / "runs" / f"{name}.trec", run, tag=f"lsr-{name}")
            details = {**self.result, "meta": self.meta, "stages_s": self.stages,
                       "sweep": self.sweep, "measures": list(MEASURES)}  # fmt: skip
            (out / "results.json").parent.mkdir(parents=True, exist_ok=True)
            (out / "results.json").write_text(json.dumps(details, indent=2) + "\n")
            write_report(out, details)


def run_eval(config: EvalConfig, encoder: Any | None = None) -> Evaluation:
    """Run ``config``; the returned :class:`Evaluation` holds results, sweep, runs and timings."""
    evaluation = Evaluation(config, encoder)
    evaluation.run()
    return evaluation
