"""Ingest worker: turns uploaded documents into indexed knowledge."""
