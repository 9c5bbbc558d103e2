from prometheus_client import CollectorRegistry, Counter, Histogram


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.documents = Counter(
            "supportdesk_ingest_documents",
            "Documents by outcome: indexed, failed (refused, unreadable, or given up), deleted.",
            ["outcome"],
            registry=registry,
        )
        for outcome in ("indexed", "failed", "deleted"):
            self.documents.labels(outcome)  # series from the start, so increase() sees a first one
        self.chunks = Counter("supportdesk_ingest_chunks", "Chunks written to the index.", registry=registry)
        self.bytes = Counter(
            "supportdesk_ingest_bytes", "Bytes of the documents indexed (as uploaded).", registry=registry
        )
        self.document_seconds = Histogram(
            "supportdesk_ingest_document_seconds",
            "From taking an upload to its document indexed: reading, parsing, chunking, embedding, upserting.",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=registry,
        )
