"""``lsr eval`` with several sparse fields: each field alone, their fusion, and optionally the
fused candidates re-scored by the dense model, side by side with per-query latencies.

Each field (an encoder: ``splade-tiny``, ``csr-minilm``, ``bm25`` ...) encodes the corpus
(cached as ``lsr eval`` caches it; BM25 is fitted on the corpus it scores) and answers every
query on its own Seismic index (or exactly), one query at a time so each is timed. The
fusion (:mod:`app.services.fusion`) merges the fields' ranked lists per query. The fusion
method and weights are either given or *selected* on other judged queries (``select_on``:
e.g. SciFact's train split), never on the queries reported.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.jobs.evaluation.bm25 import BM25Baseline
from app.jobs.evaluation.metrics import MEASURES, Qrels, evaluate_run
from app.jobs.evaluation.run import (
    EvalConfig,
    Evaluation,
    dense_doc_embeddings,
    latency_keys,
    time_per_query,
    warm_search,
)
from app.jobs.evaluation.runs import Run, hits_to_run
from app.services.fusion import (  # noqa: F401 - re-exported: the eval's rerank weights
    FUSION_METHODS,
    RERANK_DENSE_WEIGHT,
    SELECTED_FUSIONS,
    SELECTED_RERANK_WEIGHTS,
    FusionSpec,
    RankedList,
    default_rerank_weight,
    fuse,
    rerank,
)

logger = logging.getLogger(__name__)

RERANK_METHODS = ("dense",)
RERANK_GRID = tuple(round(0.1 * i, 1) for i in range(11))
# One query's re-rank input: candidate ids (fused order), their fused scores, their cosines.
Candidates = tuple[list[str], list[float], list[float]]


def selected_fusion(encoders: tuple[str, ...]) -> FusionSpec | None:
    """The shipped selection for these fields (in any order, weights follow the fields), or
    None when none was selected for them."""
    for fields, spec in SELECTED_FUSIONS.items():
        if sorted(fields) == sorted(encoders) and spec.weights is not None:
            weight = dict(zip(fields, spec.weights, strict=True))
            return FusionSpec(spec.method, tuple(weight[e] for e in encoders), spec.rrf_k)
    return None


def default_fusion(encoders: tuple[str, ...]) -> FusionSpec:
    """The shipped selection for these fields, else reciprocal-rank fusion with equal weights
    (which needs no score scale and no selection)."""
    return selected_fusion(encoders) or FusionSpec("rrf")


@dataclass
class FieldRuns:
    """One field's answers on one query set: the run, seconds per query, and its encoder."""

    name: str
    run: Run
    seconds: list[float]
    encoder: Any


@dataclass
class HybridConfig:
    """What a hybrid ``lsr eval`` runs. ``fusion`` None with ``select_on`` None: RRF, equal
    weights. ``select_on`` = (dataset, split) whose judged queries choose the fusion;
    ``compare``: other fusions scored beside it on the same field runs."""

    dataset: str
    encoders: tuple[str, ...]
    split: str = "test"
    fusion: FusionSpec | None = None
    compare: tuple[FusionSpec, ...] = ()
    select_on: tuple[str, str] | None = None
    rerank: str | None = None
    rerank_depth: int = 100
    rerank_weight: float | None = None
    rerank_latency_queries: int = 50
    k: int = 1000
    use_index: bool = True
    index_params: dict[str, Any] = field(default_factory=dict)
    query_params: dict[str, Any] = field(default_factory=dict)
    bm25: bool = True
    cache_dir: Path | None = None
    device: str | None = None
    batch_size: int | None = None
    max_queries: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if len(self.encoders) < 2:
            raise ValueError("a hybrid evaluation needs at least two --encoder fields")
        if len(set(self.encoders)) != len(self.encoders):
            raise ValueError(f"the same encoder is named twice: {list(self.encoders)}")
        if self.rerank is not None and self.rerank not in RERANK_METHODS:
            raise ValueError(f"--rerank must be one of {RERANK_METHODS}, got {self.rerank!r}")
        if self.rerank_depth < 10:
            raise ValueError(f"rerank depth must be >= 10, got {self.rerank_depth}")
        if self.rerank_weight is not None and not 0.0 <= self.rerank_weight <= 1.0:
            raise ValueError(f"rerank weight must be in [0, 1], got {self.rerank_weight}")
        if self.fusion is not None and self.fusion.weights is not None:
            if len(self.fusion.weights) != len(self.encoders):
                raise ValueError(
                    f"{len(self.fusion.weights)} fusion weights for {len(self.encoders)} fields"
                )
        if self.select_on is not None and self.fusion is not None:
            raise ValueError("give either a fusion (--fusion/--fusion-weights) or --select-on")

    def field_config(self, encoder: str, dataset: str, split: str) -> EvalConfig:
        return EvalConfig(
            dataset=dataset, encoder=encoder, split=split, k=self.k, bm25=False,
            index=self.use_index, cache_dir=self.cache_dir, device=self.device,
            batch_size=self.batch_size, max_queries=self.max_queries,
            progress=self.progress, index_params=self.index_params,
            query_params=self.query_params,
        )  # fmt: skip


def ranked_list(hits: dict[str, float]) -> RankedList:
    """A run's hits for one query, best first (ties by doc id)."""
    ranked = sorted(hits.items(), key=lambda item: (-item[1], item[0]))
    return [d for d, _ in ranked], [s for _, s in ranked]


def fuse_runs(runs: list[Run], spec: FusionSpec, depth: int) -> tuple[Run, list[float]]:
    """Fuse per query; the fused run and the seconds the fusion took per query."""
    fused: Run = {}
    seconds = []
    for qid in runs[0]:
        lists = [ranked_list(run.get(qid, {})) for run in runs]
        start = time.perf_counter()
        fused[qid] = dict(fuse(lists, spec, depth))
        seconds.append(time.perf_counter() - start)
    return fused, seconds


def fusion_grid(n_fields: int) -> list[FusionSpec]:
    """Candidate fusions: both methods over a grid of weights on the simplex (step 0.1 for
    two fields, 0.25 for more); weights that zero a field are in, so selection may say that
    one field alone is best."""
    steps = 10 if n_fields <= 2 else 4
    grid = []
    for method in FUSION_METHODS:
        for parts in itertools.product(range(steps + 1), repeat=n_fields):
            if sum(parts) == steps:
                grid.append(FusionSpec(method, tuple(round(p / steps, 4) for p in parts)))
    return grid


def select_fusion(runs: list[Run], qrels: Qrels, depth: int = 100) -> tuple[FusionSpec, list]:
    """The fusion of :func:`fusion_grid` with the best mean nDCG@10 on ``qrels``' queries
    (ties: the first in grid order); also every candidate's score, for the record."""
    cut = [{q: dict(itertools.islice(ranked_hits(h), depth)) for q, h in r.items()} for r in runs]
    scored = []
    for spec in fusion_grid(len(runs)):
        fused, _ = fuse_runs(cut, spec, depth)
        scored.append((spec, evaluate_run(qrels, fused)["nDCG@10"]))
    best = max(scored, key=lambda item: item[1])  # max keeps the first of equals
    table = [{"fusion": s.describe(), "nDCG@10": round(v, 5)} for s, v in scored]
    return best[0], table


def ranked_hits(hits: dict[str, float]):  # noqa: ANN201 - iterator of (doc id, score)
    return iter(sorted(hits.items(), key=lambda item: (-item[1], item[0])))


class HybridEvaluation:
    """Runs a :class:`HybridConfig`; ``encoders`` may hold loaded encoders to reuse by name
    (an encoder fitted on a corpus, BM25, is always loaded afresh)."""

    def __init__(self, config: HybridConfig, encoders: dict[str, Any] | None = None) -> None:
        self.config = config
        self.encoders = encoders if encoders is not None else {}
        self.result: dict[str, dict[str, Any]] = {}
        self.meta: dict[str, Any] = {}
        self.selection: list[dict[str, Any]] = []
        self.dense: Any = None
        # The dense share of the re-rank: given, else selected with the fusion, else shipped.
        self.rerank_weight: float | None = config.rerank_weight

    def field_runs(self, dataset: str, split: str, timed: bool) -> tuple[Evaluation, list]:
        """Each field's run on ``dataset``/``split``; ``timed``: one query per call."""
        from index import SeismicIndex, exact_search

        cfg = self.config
        out, first = [], None
        for name in cfg.encoders:
            reuse = self.encoders.get(name)
            ev = Evaluation(cfg.field_config(name, dataset, split), encoder=reuse)
            data, doc_ids, doc_texts = ev.load()
            qids = list(data.queries)
            docs, queries = ev.encode(data.corpus, doc_texts, [data.queries[q] for q in qids])
            if not callable(getattr(ev.encoder, "fit", None)):
                self.encoders[name] = ev.encoder
            if cfg.use_index:
                index = SeismicIndex.build(docs, **cfg.index_params)

                def search(q, index=index):  # noqa: ANN001, ANN202
                    return index.search(q, k=cfg.k, **cfg.query_params)
            else:

                def search(q, docs=docs):  # noqa: ANN001, ANN202
                    return exact_search(docs, q, k=cfg.k)

            warm_search(search, queries)
            if timed:
                rows, scores, seconds = time_per_query(search, queries)
            else:
                rows, scores = search(queries)
                seconds = []
            run = hits_to_run(qids, rows, scores, doc_ids)
            out.append(FieldRuns(name, run, seconds, ev.encoder))
            first = first or (ev, data, doc_ids, doc_texts)
        return first, out

    def select(self) -> FusionSpec:
        cfg = self.config
        if cfg.fusion is not None:
            return cfg.fusion
        if cfg.select_on is None:
            spec = selected_fusion(cfg.encoders)
            self.meta["fusion_default"] = (
                "selected on SciFact train" if spec else "rrf, equal weights"
            )
            return spec or FusionSpec("rrf")
        dataset, split = cfg.select_on
        if Path(dataset).resolve() == Path(cfg.dataset).resolve() and split == cfg.split:
            raise ValueError(
                f"--select-on {dataset}:{split} is the split being reported: select on "
                "other queries (e.g. SciFact's train split)"
            )
        start = time.perf_counter()
        (ev, data, doc_ids, doc_texts), fields = self.field_runs(dataset, split, timed=False)
        spec, self.selection = select_fusion([f.run for f in fields], data.qrels)
        self.meta["selected_on"] = {
            "dataset": data.name, "split": split, "queries": len(data.queries),
            "fusion": spec.describe(), "seconds": round(time.perf_counter() - start, 1),
        }  # fmt: skip
        if cfg.rerank == "dense" and cfg.rerank_weight is None:
            fused, _ = fuse_runs([f.run for f in fields], spec, cfg.k)
            candidates, _ = self.dense_candidates(fused, fields, data, doc_ids, doc_texts, [])
            self.rerank_weight, table = select_rerank_weight(candidates, data.qrels)
            self.meta["selected_on"]["rerank_weight"] = self.rerank_weight
            self.meta["selected_on"]["rerank_grid"] = table
        logger.info("selected %s on %s/%s", spec.describe(), data.name, split)
        return spec

    def run(self) -> dict[str, dict[str, Any]]:
        cfg = self.config
        spec = self.select()
        (ev, data, doc_ids, doc_texts), fields = self.field_runs(cfg.dataset, cfg.split, True)
        qrels = data.qrels
        keep = ("dataset", "source", "split", "documents", "judged_queries", "queries_total", "k")
        self.meta.update({key: ev.meta[key] for key in keep if key in ev.meta})
        self.meta.update(encoders=list(cfg.encoders), fusion=spec.describe(),
                         search="index" if cfg.use_index else "exact")  # fmt: skip
        for f in fields:
            self.result[f.name] = {**evaluate_run(qrels, f.run), **latency_keys(f.seconds)}
        fused, fuse_seconds = fuse_runs([f.run for f in fields], spec, cfg.k)
        # The fields are searched one after the other here, so a query pays their sum.
        per_field = [f.seconds for f in fields]
        total = [sum(parts) for parts in zip(*per_field, fuse_seconds, strict=True)]
        fused_name = "fused " + spec.describe()
        self.result[fused_name] = {**evaluate_run(qrels, fused), **latency_keys(total)}
        for other in cfg.compare:  # other fusions of the same field runs, for the record
            if other != spec:
                runs = [f.run for f in fields]
                extra, extra_seconds = fuse_runs(runs, other, cfg.k)
                cost = [sum(p) for p in zip(*per_field, extra_seconds, strict=True)]
                self.result["fused " + other.describe()] = {
                    **evaluate_run(qrels, extra), **latency_keys(cost)
                }  # fmt: skip
        if cfg.rerank == "dense":
            weight = self.rerank_weight
            if weight is None:
                weight = default_rerank_weight(cfg.encoders)
            candidates, seconds = self.dense_candidates(
                fused, fields, data, doc_ids, doc_texts, total
            )
            self.meta["rerank"] = {"depth": cfg.rerank_depth, "dense_weight": weight}
            self.result[f"{fused_name} + dense@{cfg.rerank_depth}({weight:g})"] = {
                **evaluate_run(qrels, rerank_run(candidates, weight)), **latency_keys(seconds)
            }  # fmt: skip
        if cfg.bm25:
            bm25 = BM25Baseline().index(doc_texts)
            qids = list(data.queries)
            rows, scores = bm25.search([data.queries[q] for q in qids], k=cfg.k)
            self.result["bm25 (baseline)"] = evaluate_run(qrels, hits_to_run(qids, rows, scores,
                                                                              doc_ids))  # fmt: skip
        return self.result

    def dense_embedder(self, fields: list[FieldRuns]) -> Any:
        """The dense model csr-minilm is built on: a CSR field's own, else a fresh one."""
        if self.dense is None:
            for f in fields:
                if hasattr(f.encoder, "embedder"):
                    self.dense = f.encoder.embedder
                    break
            else:
                from encoders.csr_embedder import DenseEmbedder

                self.dense = DenseEmbedder(device=self.config.device or "auto")
        return self.dense

    def dense_candidates(
        self, fused: Run, fields: list[FieldRuns], data: Any, doc_ids: list[str],
        doc_texts: list[str], before: list[float],
    ) -> tuple[dict[str, Candidates], list[float]]:  # fmt: skip
        """Per query, the fused top ``rerank_depth`` with their fused scores and the dense
        model's cosines with the query (what :func:`rerank_run` mixes). Documents are
        embedded once (cached); the query embedding is what a search pays, timed one query
        at a time on the first ``rerank_latency_queries`` queries after ``before``'s seconds
        (a CPU transformer call per query is slow; the rest are embedded in one batch)."""
        dense = self.dense_embedder(fields)
        emb = dense_doc_embeddings(
            self.config.cache_dir, data.corpus, dense, doc_texts, progress=self.config.progress
        )
        row_of = {d: i for i, d in enumerate(doc_ids)}
        depth = self.config.rerank_depth
        qids = list(fused)
        embedded = dense.embed([data.queries[q] for q in qids])  # the scores: one batch
        dense.embed(["warm up"])
        out: dict[str, Candidates] = {}
        seconds = []
        for i, qid in enumerate(qids):
            timed = i < min(self.config.rerank_latency_queries, len(before))
            start = time.perf_counter()
            top = list(itertools.islice(ranked_hits(fused[qid]), depth))
            ids = [d for d, _ in top]
            # The timed queries are embedded again one by one: that is what a search pays.
            q = dense.embed([data.queries[qid]])[0] if timed else embedded[i]
            cosines = emb[[row_of[d] for d in ids]] @ q if ids else np.zeros(0, np.float32)
            out[qid] = (ids, [s for _, s in top], [float(c) for c in cosines])
            if timed:
                seconds.append(before[i] + time.perf_counter() - start)
        return out, seconds


def rerank_run(candidates: dict[str, Candidates], weight: float) -> Run:
    """Each query's candidates scored ``(1 - weight) minmax(fused) + weight minmax(cosine)``
    (:func:`app.services.fusion.rerank`, what the service's re-rank computes)."""
    return {qid: dict(rerank(ids, fused, cosines, weight))
            for qid, (ids, fused, cosines) in candidates.items()}  # fmt: skip


def select_rerank_weight(
    candidates: dict[str, Candidates], qrels: Qrels
) -> tuple[float, list[dict[str, float]]]:
    """The dense share of :data:`RERANK_GRID` with the best mean nDCG@10 on ``qrels``' queries
    (ties: the smaller share), and every share's score for the record."""
    scored = [(w, evaluate_run(qrels, rerank_run(candidates, w))["nDCG@10"]) for w in RERANK_GRID]
    best = max(scored, key=lambda item: item[1])  # max keeps the first of equals
    return best[0], [{"dense_weight": w, "nDCG@10": round(v, 5)} for w, v in scored]


def run_hybrid_eval(config: HybridConfig, encoders: dict[str, Any] | None = None):  # noqa: ANN201
    """Run ``config``; the returned :class:`HybridEvaluation` holds result, meta, selection."""
    evaluation = HybridEvaluation(config, encoders)
    evaluation.run()
    return evaluation


def hybrid_rows(result: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Rows for the terminal table: system, the measures, mean / p99 latency (ms)."""
    rows = []
    for name, values in result.items():
        cells = [f"{values[m]:.4f}" for m in MEASURES]
        for key in ("latency_mean_ms", "latency_p99_ms"):
            cells.append(f"{values[key]:.3f}" if key in values else "-")
        rows.append([name, *cells])
    return rows


HYBRID_COLUMNS = ["system", *MEASURES, "latency_mean_ms", "latency_p99_ms"]
