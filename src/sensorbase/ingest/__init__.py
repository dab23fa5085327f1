"""Ingest: checking canonical batches, resolving their series and group-committing them."""
