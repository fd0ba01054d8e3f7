"""A CSR model on the shared test collections: nDCG@10 of dense, CSR at several k, and BM25.

Used by ``benchmarks/bench_csr.py`` and by ``train_csr --eval`` (the leave-one-collection-out
table: each collection is marked with whether any of its text was in training). Dense = the
same all-MiniLM-L6-v2 embeddings, cosine, exact; CSR = those embeddings through the
autoencoder at ``k``, exact inner-product search (scipy, or the caller's ``search``);
BM25 = :class:`encoders.bm25.BM25Encoder` fitted on the collection (the eval baseline's
analyser and scoring), exact search.
Judged test queries only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from encoders.training.retrieval import (
    BeirCollection,
    SparseSearch,
    load_beir,
    ndcg_at_10,
    query_key,
    top_dense,
    top_sparse,
)

logger = logging.getLogger(__name__)


def embeddings_for(encoder, coll: BeirCollection, cache: dict[str, np.ndarray]):
    """(doc, query) dense embeddings of a collection, from ``cache`` when present. The queries
    are keyed by split (:func:`query_key`): a split's queries are never served for another's."""
    key_d = f"{coll.name}/docs"
    key_q = query_key(coll.name, coll.split)
    if key_d not in cache:
        t = time.perf_counter()
        cache[key_d] = encoder.embedder.embed(coll.doc_texts, progress=True)
        cache[f"{coll.name}/seconds"] = np.array(time.perf_counter() - t)
    if key_q not in cache:
        cache[key_q] = encoder.embedder.embed(coll.query_texts)
    return cache[key_d].astype(np.float32), cache[key_q].astype(np.float32)


def bm25_ndcg(coll: BeirCollection) -> float:
    """nDCG@10 of BM25 (fitted on the collection's documents), exact search."""
    from encoders.bm25 import BM25Encoder

    enc = BM25Encoder().fit(coll.doc_texts)
    ranked = top_sparse(enc.encode_queries(coll.query_texts), enc.encode_documents(coll.doc_texts))
    return ndcg_at_10(*ranked, coll.query_ids, coll.doc_ids, coll.qrels)


def evaluate_collection(
    encoder,
    coll: BeirCollection,
    ks: Sequence[int],
    cache: dict[str, np.ndarray],
    *,
    search: SparseSearch | None = None,
    bm25: bool = True,
    extra: Callable[[Any, Any, np.ndarray, BeirCollection], dict] | None = None,
) -> dict[str, Any]:
    """One collection's row: dense, ``csr_k{k}``, ``ratio_k{k}`` (CSR / dense), ``bm25``.
    ``search`` replaces the scipy exact search of the codes (e.g. ``index.exact_search``);
    ``extra(docs_k64, queries_k64, exact_rows, coll)`` may add numbers at k = 64."""
    d, q = embeddings_for(encoder, coll, cache)
    dense = ndcg_at_10(*top_dense(q, d), coll.query_ids, coll.doc_ids, coll.qrels)
    row: dict[str, Any] = {"docs": len(coll.doc_ids), "queries": len(coll.query_ids)}
    row["dense"] = dense
    for k in ks:
        docs_k, queries_k = encoder.sparsify(d, k), encoder.sparsify(q, k)
        ranked = top_sparse(queries_k, docs_k, search=search)
        score = ndcg_at_10(*ranked, coll.query_ids, coll.doc_ids, coll.qrels)
        row[f"csr_k{k}"] = score
        row[f"ratio_k{k}"] = score / dense if dense else float("nan")
        row[f"doc_nnz_k{k}"] = float(np.diff(docs_k.indptr).mean())
        if extra is not None and k == 64:
            row.update(extra(docs_k, queries_k, ranked[0], coll))
    # What ``lsr eval`` and the service get from the model's own settings: documents at
    # ``default_k``, queries at ``query_k`` (which may differ: a query's code may be wider).
    if hasattr(encoder, "query_k") and hasattr(encoder, "default_k"):
        row["served_doc_k"], row["served_query_k"] = encoder.default_k, encoder.query_k
        if encoder.query_k == encoder.default_k and f"csr_k{encoder.default_k}" in row:
            row["csr_served"] = row[f"csr_k{encoder.default_k}"]  # the symmetric column
        else:
            ranked = top_sparse(
                encoder.sparsify(q, encoder.query_k, wide=True),
                encoder.sparsify(d, encoder.default_k),
                search=search,
            )
            row["csr_served"] = ndcg_at_10(*ranked, coll.query_ids, coll.doc_ids, coll.qrels)
        row["ratio_served"] = row["csr_served"] / dense if dense else float("nan")
    if bm25:
        row["bm25"] = bm25_ndcg(coll)
    return row


def summarize(results: dict[str, dict], ks: Sequence[int]) -> dict[str, float]:
    """Mean and minimum CSR / dense ratio over the collections, per ``k``."""
    out = {}
    for k in ks:
        ratios = [r[f"ratio_k{k}"] for r in results.values()]
        out[f"mean_ratio_k{k}"] = float(np.mean(ratios))
        out[f"min_ratio_k{k}"] = float(np.min(ratios))
    served = [r["ratio_served"] for r in results.values() if "ratio_served" in r]
    if served and len(served) == len(results):
        out["mean_ratio_served"] = float(np.mean(served))
        out["min_ratio_served"] = float(np.min(served))
    return out


def evaluate(
    encoder,
    data_dir: Path,
    collections: Sequence[str],
    ks: Sequence[int],
    *,
    cache: dict[str, np.ndarray] | None = None,
    in_training: Sequence[str] = (),
    **options: Any,
) -> dict[str, Any]:
    """Every collection's row (with ``in_training``: whether any of its text was trained on)
    and the summary."""
    cache = {} if cache is None else cache
    ks = [k for k in ks if k <= encoder.max_k]
    results = {}
    for name in collections:
        coll = load_beir(Path(data_dir) / name, "test")
        results[name] = evaluate_collection(encoder, coll, ks, cache, **options)
        results[name]["in_training"] = name in in_training
        logger.info("%s: %s", name, {k: round(v, 4) for k, v in results[name].items() if v})
    return {"collections": results, "summary": summarize(results, ks), "ks": ks}


def format_table(result: dict[str, Any]) -> str:
    """The table the model card shows: dense, CSR at each k, k=64 / dense, the served
    setting (documents ``default_k``, queries ``query_k``) / dense, BM25."""
    ks = result["ks"]
    lines = [
        f"{'collection':<10} {'trained':>7} {'dense':>7} "
        + " ".join(f"{'k=' + str(k):>7}" for k in ks)
        + f" {'k64/dense':>9} {'served':>7} {'bm25':>7}"
    ]
    for name, row in result["collections"].items():
        cells = " ".join(f"{row[f'csr_k{k}']:>7.4f}" for k in ks)
        ratio = f"{row['ratio_k64']:>9.3f}" if "ratio_k64" in row else " " * 9
        bm25 = f"{row['bm25']:>7.4f}" if "bm25" in row else ""
        served = f"{row['ratio_served']:>7.3f}" if "ratio_served" in row else " " * 7
        trained = "yes" if row.get("in_training") else "no"
        lines.append(
            f"{name:<10} {trained:>7} {row['dense']:>7.4f} {cells} {ratio} {served} {bm25}"
        )
    lines.append("summary: " + str({k: round(v, 4) for k, v in result["summary"].items()}))
    return "\n".join(lines)
