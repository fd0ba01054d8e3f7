"""Seismic-style blocked inverted index over learned sparse vectors (Numba).

Public contract (see DESIGN.md)::

    from index import SeismicIndex, exact_search
    idx = SeismicIndex.build(docs_csr, **params)
    ids, scores = idx.search(queries_csr, k=10, query_cut=..., heap_factor=...)
    idx.save(path); idx = SeismicIndex.load(path)
    ids, scores = exact_search(docs_csr, queries_csr, k=10)
"""

from index.builder import BuildParams
from index.exact import exact_search, recall_vs_exact
from index.params import DEFAULT_HEAP_FACTOR, DEFAULT_QUERY_CUT, QueryParams
from index.seismic import SeismicIndex
from index.storage import IndexFormatError

__all__ = [
    "BuildParams",
    "DEFAULT_HEAP_FACTOR",
    "DEFAULT_QUERY_CUT",
    "IndexFormatError",
    "QueryParams",
    "SeismicIndex",
    "exact_search",
    "recall_vs_exact",
]
