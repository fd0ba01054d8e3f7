"""Seismic-style blocked inverted index over learned sparse vectors (Numba).

Public contract (see DESIGN.md)::

    from index import SeismicIndex, exact_search
    idx = SeismicIndex.build(docs_csr, **params)
    ids, scores = idx.search(queries_csr, k=10, query_cut=..., heap_factor=...)
    idx.save(path); idx = SeismicIndex.load(path)
    ids, scores = exact_search(docs_csr, queries_csr, k=10)

    idx = SeismicIndex.build(docs_csr, calibrate=True)      # stores the recall/cost front
    ids, scores = idx.search(queries_csr, k=10, recall=0.95)
    ids, scores, certified = idx.search(queries_csr, k=10, certify=True)
    ids, scores = idx.search(queries_csr, k=10, mode="exact")
"""

from index.builder import BuildParams
from index.calibration import Calibration, FrontPoint
from index.exact import exact_search, recall_vs_exact
from index.explain import SearchExplanation
from index.params import DEFAULT_HEAP_FACTOR, DEFAULT_QUERY_CUT, QueryParams
from index.recall_estimator import RecallController, RecallEstimate, RecallEstimator
from index.seismic import SeismicIndex
from index.settings import QuerySetting
from index.storage import IndexFormatError

__all__ = [
    "BuildParams",
    "Calibration",
    "DEFAULT_HEAP_FACTOR",
    "DEFAULT_QUERY_CUT",
    "FrontPoint",
    "IndexFormatError",
    "QueryParams",
    "QuerySetting",
    "RecallController",
    "RecallEstimate",
    "RecallEstimator",
    "SearchExplanation",
    "SeismicIndex",
    "exact_search",
    "recall_vs_exact",
]
