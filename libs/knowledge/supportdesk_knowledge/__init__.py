"""The knowledge base the agent answers from and the ingest worker fills."""
