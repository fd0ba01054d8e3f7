"""Retrieval evaluation for CSR: BEIR-layout folders, exact search, nDCG@10 with ir_measures.

Only judged queries are scored (as trec_eval does). Search is exact inner product: a NumPy
product for dense rows, a scipy product for sparse ones (the evaluation sets are small), both
ranked as ``index.exact_search`` ranks (ties to the lower row). This package never imports
``index`` (DESIGN.md); a caller may hand its own exact search in (``search``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

COLLECTIONS = ("scifact", "cranfield", "cisi", "cacm", "med")
# An exact sparse search with ``index.exact_search``'s signature: (docs, queries, k) ->
# (rows int64, scores float32), each (n_queries, k), -1 / 0.0 in empty slots.
SparseSearch = Callable[[sp.csr_array, sp.csr_array, int], tuple[np.ndarray, np.ndarray]]


@dataclass
class BeirCollection:
    """Documents, judged queries and judgments of one BEIR folder split."""

    name: str
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]
    split: str = "test"


def query_key(name: str, split: str = "test") -> str:
    """The key of a collection's ``split`` queries in an embedding cache: ``name/queries`` for
    test, ``name/<split>_queries`` otherwise, so one cache holds every split apart."""
    return f"{name}/queries" if split == "test" else f"{name}/{split}_queries"


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
        split=split,
    )


def top_dense(
    queries: np.ndarray, docs: np.ndarray, depth: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``depth`` by inner product of dense rows: ``(rows int64, scores float32)``,
    best first, ties to the lower row."""
    scores = queries.astype(np.float32) @ docs.astype(np.float32).T
    return top_of(scores, depth)


def top_sparse(
    queries: sp.csr_array,
    docs: sp.csr_array,
    depth: int = 100,
    *,
    search: SparseSearch | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``depth`` by inner product of sparse rows: ``(rows int64, scores float32)``,
    each ``(n_queries, depth)``, best first.

    Ranked as ``index.exact_search`` ranks: ties go to the lower row, and only documents
    sharing a term with the query are hits (empty slots: row -1, score 0.0). A scipy product
    (float32), which keeps an entry only where a query and a document share a term (with
    non-negative weights; a sum of exactly 0 is dropped too); ``search`` replaces it.
    """
    if search is not None:
        return search(docs, queries, depth)
    product = (
        sp.csr_array(queries, dtype=np.float32) @ sp.csr_array(docs, dtype=np.float32).T
    ).tocoo()
    n_queries, n_docs = product.shape
    scores = np.full((n_queries, max(n_docs, depth)), -np.inf, dtype=np.float32)
    scores[product.row, product.col] = product.data
    return top_hits(scores, depth)


def top_hits(scores: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_of` where ``-inf`` marks a document that is no hit for the query: slots
    left without a hit get row -1 and score 0.0 (as ``index.exact_search`` returns them)."""
    rows, top = top_of(scores, depth)
    empty = np.isneginf(top)
    rows[empty] = -1
    top[empty] = 0.0
    return rows, top


def top_of(scores: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``scores`` ``(n_rows, n_cols)``, the columns of the ``depth`` largest values
    (int64) and those values (float32), best first; equal values go to the lower column,
    also at the cut (which ``argpartition`` alone leaves to chance)."""
    n_rows, n_cols = scores.shape
    depth = min(depth, n_cols)
    if depth == 0:
        return np.empty((n_rows, 0), np.int64), np.empty((n_rows, 0), np.float32)
    # Every column above the depth-th largest value is in; columns equal to it fill the
    # remaining slots in column order.
    kth = np.partition(scores, n_cols - depth, axis=1)[:, n_cols - depth, None]
    above = scores > kth
    at = scores == kth
    room = depth - above.sum(axis=1, keepdims=True)
    chosen = above | (at & (np.cumsum(at, axis=1) <= room))
    cols = np.nonzero(chosen)[1].reshape(n_rows, depth)  # ascending within each row
    picked = np.take_along_axis(scores, cols, 1)
    order = np.argsort(-picked, axis=1, kind="stable")
    rows = np.take_along_axis(cols, order, 1).astype(np.int64)
    return rows, np.take_along_axis(picked, order, 1).astype(np.float32)


def recall_of(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each query's ``truth`` rows that ``found`` holds too (both
    ``(n_queries, k)`` row arrays; -1 slots ignored); queries with no truth row are left
    out of the mean (NaN when none has one)."""
    found, truth = np.asarray(found, np.int64), np.asarray(truth, np.int64)
    valid = truth >= 0
    held = (truth[:, :, None] == found[:, None, :]).any(axis=2) & valid
    n_truth = valid.sum(axis=1)
    scored = n_truth > 0
    if not scored.any():
        return float("nan")
    return float(np.mean(held.sum(axis=1)[scored] / n_truth[scored]))


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
