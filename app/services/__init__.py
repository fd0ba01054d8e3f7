"""Service layer: collection registry, encoders, worker pools, search, indexing jobs."""
