"""Retrieval evaluation for CSR: BEIR-layout folders, exact search, nDCG@10 with ir_measures.

Only judged queries are scored (as trec_eval does). Sparse search is exact inner product:
``index.exact_search`` when the index package is importable, else a scipy product.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

COLLECTIONS = ("scifact", "cranfield", "cisi", "cacm", "med")


@dataclass
class BeirCollection:
    """Documents, judged queries and judgments of one BEIR folder split."""

    name: str
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def doc_text(doc: dict) -> str:
    """BEIR convention for bi-encoders: ``title + " " + text`` (stripped)."""
    return f"{doc.get('title') or ''} {doc.get('text') or ''}".strip()


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``query-id -> {corpus-id: score}`` from a BEIR ``qrels/*.tsv`` (header line skipped)."""
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        next(reader, None)
        for row in reader:
            if len(row) >= 3:
                qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def load_beir(folder: str | Path, split: str = "test") -> BeirCollection:
    """A BEIR folder's corpus and the queries judged in ``qrels/{split}.tsv``."""
    folder = Path(folder)
    docs = read_jsonl(folder / "corpus.jsonl")
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    queries = [q for q in read_jsonl(folder / "queries.jsonl") if str(q["_id"]) in qrels]
    return BeirCollection(
        name=folder.name,
        doc_ids=[str(d["_id"]) for d in docs],
        doc_texts=[doc_text(d) for d in docs],
        query_ids=[str(q["_id"]) for q in queries],
        query_texts=[q["text"] for q in queries],
        qrels={q: qrels[q] for q in (str(x["_id"]) for x in queries)},
    )


def top_dense(
    queries: np.ndarray, docs: np.ndarray, depth: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``depth`` by inner product of dense rows: ``(rows int64, scores float32)``."""
    scores = queries.astype(np.float32) @ docs.astype(np.float32).T
    return _top_of(scores, depth)


def top_sparse(
    queries: sp.csr_array, docs: sp.csr_array, depth: int = 100, *, use_index: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``depth`` by inner product of sparse rows.

    Uses ``index.exact_search`` when ``use_index`` and the index package imports, else scipy.
    """
    exact_search = None
    if use_index:
        try:
            from index import exact_search
        except ImportError:
            exact_search = None
    if exact_search is not None:
        return exact_search(docs, queries, k=depth)
    scores = (queries @ docs.T).toarray()
    return _top_of(scores, depth)


def _top_of(scores: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    depth = min(depth, scores.shape[1])
    part = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
    part_scores = np.take_along_axis(scores, part, 1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, 1).astype(np.int64), np.take_along_axis(
        part_scores, order, 1
    ).astype(np.float32)


def ndcg_at_10(
    rows: np.ndarray,
    scores: np.ndarray,
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    qrels: dict[str, dict[str, int]],
) -> float:
    """nDCG@10 (ir_measures) of ``rows``/``scores`` ``(n_queries, depth)``; row -1 = no hit."""
    import ir_measures
    from ir_measures import nDCG

    run = {}
    for qi, qid in enumerate(query_ids):
        run[qid] = {
            doc_ids[r]: float(s) for r, s in zip(rows[qi], scores[qi], strict=True) if r >= 0
        }
        # A query with no hit still counts (as 0), as trec_eval counts it with -c.
        run[qid] = run[qid] or {"__no_hit__": 0.0}
    result = ir_measures.calc_aggregate([nDCG @ 10], qrels, run)
    return float(result[nDCG @ 10])
