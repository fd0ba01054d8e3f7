"""Batch jobs behind ``lsr index`` and ``lsr eval``: corpus readers, encoded shards, the index
build, BM25 baseline, TREC runs, metrics and reports."""
