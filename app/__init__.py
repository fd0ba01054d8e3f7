"""The search service, background jobs and the ``lsr`` command line."""
