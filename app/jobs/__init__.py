"""Batch jobs behind ``lsr index`` and ``lsr eval``, split by pipeline.

Shared: corpus readers (``corpus``, ``vector_corpus``, ``sources``), encoding (``encode``),
``ir_datasets`` access (``irds``), parameters and errors. ``indexing``: shard encoders, shards,
the index build, publishing as a collection. ``evaluation``: datasets, BM25, runs, metrics,
reports.
"""
