"""Durable collections: write-ahead log, sealed and mutable segments, filters, manifests."""
