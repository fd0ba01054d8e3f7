"""The evaluation pipeline of ``lsr eval``: datasets, exact / index / BM25 runs, metrics, report."""
