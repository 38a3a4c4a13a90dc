"""Ingestion: blobs, safe URL fetching, parsers, chunking and the durable job queue."""
