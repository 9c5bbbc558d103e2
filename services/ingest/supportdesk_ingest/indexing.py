"""Indexing and removing documents; statuses go to the registry as they change."""

import hashlib
import logging
from pathlib import PurePath
from typing import Protocol

from supportdesk_contracts.events import DocumentDeleted, DocumentUploaded
from supportdesk_documents.registry import DocumentRegistry, document_id_for
from supportdesk_ingest.errors import UnreadableDocument
from supportdesk_ingest.samples import sample_documents
from supportdesk_knowledge.base import KnowledgeBase

log = logging.getLogger(__name__)


def title_of(filename: str) -> str:
    return PurePath(filename).stem.replace("_", " ").replace("-", " ").strip() or filename


class DocumentParser(Protocol):
    """Text out of a document's bytes, or `UnreadableDocument` with the reason;
    `sandbox.ParseSandbox` in the worker."""

    async def extract_text(self, filename: str, data: bytes) -> str: ...


class Indexer:
    def __init__(self, kb: KnowledgeBase, registry: DocumentRegistry, parser: DocumentParser) -> None:
        self.kb = kb
        self.registry = registry
        self.parser = parser

    async def uploaded(self, event: DocumentUploaded) -> None:
        data = await self.registry.blob(event.document_id)
        if data is None:
            await self.registry.mark(event.document_id, "failed", error="the uploaded bytes expired before indexing")
            return
        if hashlib.sha256(data).hexdigest() != event.sha256:
            await self.registry.mark(event.document_id, "failed", error="the uploaded bytes do not match their hash")
            return
        await self.registry.mark(event.document_id, "processing")
        try:
            text = await self.parser.extract_text(event.filename, data)
        except UnreadableDocument as exc:
            # Final, whatever the reason (a limit, a crash of the parser): the
            # message is acknowledged, since parsing the same bytes again
            # would end the same way.
            await self.registry.mark(event.document_id, "failed", error=str(exc))
            log.info("document refused", extra={"document_id": event.document_id, "reason": str(exc)})
            return
        chunks = await self.kb.add_document(event.document_id, title_of(event.filename), text)
        await self.registry.mark(event.document_id, "indexed", chunks=chunks)
        log.info("document indexed", extra={"document_id": event.document_id, "chunks": chunks})

    async def deleted(self, event: DocumentDeleted) -> None:
        await self.kb.index.delete_document(event.document_id)
        await self.registry.remove(event.document_id)

    async def load_samples(self) -> int:
        """Index the sample knowledge, unless the index already holds anything."""
        if await self.kb.index.count() > 0:
            return 0
        for title, body in sample_documents():
            data = body.encode()
            sha = hashlib.sha256(data).hexdigest()
            document_id = document_id_for(sha)
            chunks = await self.kb.add_document(document_id, title, body)
            await self.registry.register_builtin(document_id, f"{title}.txt", sha, len(data), chunks)
        log.info("sample knowledge indexed", extra={"documents": len(sample_documents())})
        return len(sample_documents())
