"""Indexing and removing documents; statuses go to the registry as they change."""

import hashlib
import logging
import time
from pathlib import PurePath
from typing import Protocol

from supportdesk_contracts.events import AttachmentUploaded, DocumentDeleted, DocumentStatusChanged, DocumentUploaded
from supportdesk_documents.registry import DocumentRegistry, Status, document_id_for
from supportdesk_ingest.errors import UnreadableDocument
from supportdesk_ingest.metrics import IngestMetrics
from supportdesk_ingest.samples import sample_documents, sample_ids
from supportdesk_ingest.sources import DocumentSources, SourcePolicy
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_platform.kafka import TRANSIENT_ERRORS, Publisher
from supportdesk_platform.telemetry import span
from supportdesk_sessions.attachments import AttachmentRecord, Passage, SessionAttachments
from supportdesk_sessions.cipher import SessionDecryptError

log = logging.getLogger(__name__)
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
SAMPLE_VERSION = 1
"""Sample documents never change: two workers loading them write the same chunks."""


def title_of(filename: str) -> str:
    return PurePath(filename).stem.replace("_", " ").replace("-", " ").strip() or filename


class DocumentParser(Protocol):
    """Text out of a document's bytes, or `UnreadableDocument` with the reason;
    `sandbox.ParseSandbox` in the worker."""

    async def extract_text(self, filename: str, data: bytes) -> str: ...


class Indexer:
    def __init__(
        self,
        kb: KnowledgeBase,
        registry: DocumentRegistry,
        parser: DocumentParser,
        samples_retire: bool = True,
        *,
        sources: DocumentSources | None = None,
        statuses: Publisher | None = None,
        metrics: IngestMetrics | None = None,
    ) -> None:
        """With `samples_retire`, the sample knowledge leaves the index and the
        document list once an own document is indexed. `sources` reads a
        document's bytes however they came (the gateway's claim check only,
        without it); `statuses`, if given, hears every status change."""
        self.kb = kb
        self.registry = registry
        self.parser = parser
        self.samples_retire = samples_retire
        self.sources = sources or DocumentSources(registry, SourcePolicy(max_bytes=DEFAULT_MAX_BYTES))
        self.statuses = statuses
        self.metrics = metrics

    async def _mark(
        self, event: DocumentUploaded, status: Status, *, chunks: int | None = None, error: str | None = None
    ) -> None:
        recorded = await self.registry.mark(event.document_id, status, chunks=chunks, error=error)
        if recorded and status == "failed":
            self._count("failed")
        if recorded and self.statuses is not None:
            changed = DocumentStatusChanged(
                **event.caused(), document_id=event.document_id, status=status, chunks=chunks, error=error
            )
            await self.statuses.publish(changed, key=event.document_id.encode())

    async def uploaded(self, event: DocumentUploaded) -> None:
        try:
            await self._index(event)
        except TRANSIENT_ERRORS:
            raise  # retried, then `given_up`
        except Exception as exc:
            # A poison event (dead-lettered as it is): its status says so,
            # never left `queued` or `processing`.
            await self._refused(event, f"not indexed: {type(exc).__name__}: {exc}")
            raise

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.documents.labels(outcome).inc()

    async def _index(self, event: DocumentUploaded) -> None:
        began = time.perf_counter()
        if event.blob_key is None:
            # From another producer: its status record starts here.
            await self.registry.register(event.document_id, event.filename, event.content_type)
        elif await self.registry.get(event.document_id) is None:
            return  # deleted before it was indexed
        try:
            data = await self.sources.read(event)
        except UnreadableDocument as exc:
            await self._refused(event, str(exc))
            return
        sha = hashlib.sha256(data).hexdigest()
        if event.sha256 is not None and sha != event.sha256:
            await self._refused(event, "the bytes do not match their sha256")
            return
        if event.size is not None and len(data) != event.size:
            await self._refused(event, f"{len(data):,} bytes arrived, not the {event.size:,} announced")
            return
        if event.blob_key is None:
            await self.registry.describe(event.document_id, len(data), sha)
        await self._mark(event, "processing")
        try:
            with span(
                "parse",
                {"supportdesk.document.bytes": len(data), "supportdesk.document.type": event.content_type or ""},
            ):
                text = await self.parser.extract_text(event.filename, data)
        except UnreadableDocument as exc:
            # Final, whatever the reason (a limit, a crash of the parser): the
            # message is acknowledged, since parsing the same bytes again
            # would end the same way.
            await self._refused(event, str(exc))
            return
        chunks = await self.kb.add_document(
            event.document_id,
            event.title or title_of(event.filename),
            text,
            url=event.source_url,
            metadata=event.metadata,
            version=int(event.occurred_at.timestamp() * 1_000_000),
        )
        await self._mark(event, "indexed", chunks=chunks)
        log.info("document indexed", extra={"document_id": event.document_id, "chunks": chunks})
        if self.metrics is not None:
            self._count("indexed")
            self.metrics.chunks.inc(chunks)
            self.metrics.bytes.inc(len(data))
            self.metrics.document_seconds.observe(time.perf_counter() - began)
        if self.samples_retire and chunks:
            await self.retire_samples()

    async def _refused(self, event: DocumentUploaded, reason: str) -> None:
        await self._mark(event, "failed", error=reason)
        log.info("document refused", extra={"document_id": event.document_id, "reason": reason})

    async def given_up(self, event: DocumentUploaded, reason: str) -> None:
        # The bytes stay (24 h): replaying the dead letter indexes it once the dependency is back.
        error = f"not indexed: {reason}; upload it again or replay its dead letter"
        recorded = await self.registry.mark(event.document_id, "failed", error=error, keep_bytes=True)
        if recorded:
            self._count("failed")
        if recorded and self.statuses is not None:
            failed = DocumentStatusChanged(
                **event.caused(), document_id=event.document_id, status="failed", error=error
            )
            await self.statuses.publish(failed, key=event.document_id.encode())

    async def deleted(self, event: DocumentDeleted) -> None:
        await self.kb.index.delete_document(event.document_id)
        await self.registry.remove(event.document_id)
        self._count("deleted")

    async def retire_samples(self) -> None:
        """The sample knowledge out of the index and the document list (the
        index first: a sample listed but not searched is harmless, the
        reverse is not)."""
        known = sample_ids()
        if await self.kb.index.count(samples=True, known=known) == 0:
            return
        await self.kb.index.delete_samples(known)
        for document_id in {*await self.registry.samples(), *known}:
            await self.registry.remove(document_id)
        log.info("sample knowledge removed: the operator's own documents are indexed")

    async def load_samples(self) -> int:
        """Index the sample knowledge into an index that holds no own
        documents (and no samples yet)."""
        if await self.kb.index.count() > 0:
            if self.samples_retire and await self.kb.index.count(samples=False, known=sample_ids()) > 0:
                await self.retire_samples()  # own documents came while this worker was away
            return 0
        for title, body in sample_documents():
            data = body.encode()
            sha = hashlib.sha256(data).hexdigest()
            document_id = document_id_for(sha)
            chunks = await self.kb.add_document(document_id, title, body, sample=True, version=SAMPLE_VERSION)
            await self.registry.register_sample(document_id, f"{title}.txt", sha, len(data), chunks)
        log.info("sample knowledge indexed", extra={"documents": len(sample_documents())})
        return len(sample_documents())


class AttachmentReader:
    """A user's attachment: parsed under the same limits as a document, cut
    and embedded as the index's chunks are, and kept in the session's own
    state; the shared index never sees it."""

    def __init__(
        self, kb: KnowledgeBase, attachments: SessionAttachments, parser: DocumentParser, max_passages: int
    ) -> None:
        self.kb = kb
        self.attachments = attachments
        self.parser = parser
        self.max_passages = max_passages

    async def uploaded(self, event: AttachmentUploaded) -> None:
        record = await self.attachments.get(event.session_id, event.attachment_id)
        if record is None:
            # The session is gone, or its record is under a key this worker
            # lacks (its SESSION_ENCRYPTION_KEYS differ from the gateway's).
            log.info("attachment not found", extra={"session_id": event.session_id})
            return
        if record.status != "queued":
            return  # a redelivery of one already read
        try:
            await self._read(record, event)
        except TRANSIENT_ERRORS:
            raise  # retried, then `given_up`
        # Deliberately broad, and re-raised (to the dead letters): whatever
        # broke, the user's attachment says it failed instead of staying queued.
        except Exception as exc:
            await self.attachments.failed(
                record, event.session_id, f"the file could not be read ({type(exc).__name__})"
            )
            raise

    async def _read(self, record: AttachmentRecord, event: AttachmentUploaded) -> None:
        try:
            data = await self.attachments.blob(event.session_id, event.attachment_id)
        except SessionDecryptError:
            data = None
        if data is None or hashlib.sha256(data).hexdigest() != event.sha256:
            current = await self.attachments.get(event.session_id, event.attachment_id)
            if current is not None and current.status == "queued":  # not read meanwhile by a redelivery
                await self.attachments.failed(record, event.session_id, "the uploaded bytes are gone or do not match")
            return
        try:
            text = await self.parser.extract_text(event.filename, data)
        except UnreadableDocument as exc:
            await self.attachments.failed(record, event.session_id, str(exc))
            log.info("attachment refused", extra={"session_id": event.session_id, "reason": str(exc)})
            return
        found, truncated = await self.kb.passages_of(title_of(event.filename), text, self.max_passages)
        if not found:
            await self.attachments.failed(record, event.session_id, "the file holds no text")
            return
        passages = [Passage(text, vector) for text, vector in found]
        await self.attachments.parsed(record, event.session_id, passages, truncated)
        log.info("attachment read", extra={"session_id": event.session_id, "passages": len(passages)})

    async def given_up(self, event: AttachmentUploaded, reason: str) -> None:
        record = await self.attachments.get(event.session_id, event.attachment_id)
        if record is not None and record.status == "queued":
            await self.attachments.failed(record, event.session_id, f"not read: {reason}; attach it again")
