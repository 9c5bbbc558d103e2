"""A user's attachment, read by the ingest worker's reader under the same
sandbox as documents and searched by the agent with the real embedding model
and Qdrant local mode: it answers its own session's questions, with itself
as the source; another session never sees it, and the shared index never
holds it. A hostile attachment fails with its reason, as a document does."""

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from builders import session_store
from supportdesk_agent.answerer import RetrievalOptions, TurnAnswerer
from supportdesk_agent.escalation import EscalationPolicy
from supportdesk_agent.generators import ExtractiveGenerator
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_contracts.events import AttachmentUploaded, ReplyCompleted, TurnRequested
from supportdesk_ingest.indexing import AttachmentReader
from supportdesk_ingest.limits import ParseLimits
from supportdesk_ingest.sandbox import ParseSandbox
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_knowledge.embedder import Embedder
from supportdesk_knowledge.index import KnowledgeIndex, open_client
from supportdesk_knowledge.settings import KnowledgeSettings
from supportdesk_sessions.attachments import AttachmentRecord, SessionAttachments
from supportdesk_sessions.cipher import SessionCipher
from supportdesk_sessions.settings import DEVELOPMENT_ENCRYPTION_KEY
from unit.ingest.hostile_documents import zip_bomb_docx

pytestmark = pytest.mark.integration

SHIPPING = "Shipping information", "Standard shipping takes 3-5 business days. Express shipping takes 1-2 days."
SLIP = b"Plan,Monthly price,Seats\nSummit Basic,12 EUR,3\nSummit Plus,29 EUR,10\nSummit Team,79 EUR,50\n"
QUESTION = "How much does Summit Plus cost per month?"


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def publish(self, message: Any, *, key: bytes | None = None, no_confirm: bool = False) -> None:
        self.events.append(message)


@pytest.fixture
async def kb(qdrant_path: str, embedder: Embedder) -> AsyncIterator[KnowledgeBase]:
    settings = KnowledgeSettings(qdrant_path=qdrant_path)
    index = KnowledgeIndex(open_client(settings), settings.qdrant_collection, embedder.dimension, server=False)
    await index.ensure_collection()
    kb = KnowledgeBase(settings, embedder, index)
    await kb.add_document("d-ship", *SHIPPING)
    yield kb
    await kb.close()


async def attach(
    attachments: SessionAttachments, reader: AttachmentReader, session_id: str, filename: str, data: bytes
) -> AttachmentRecord:
    sha = hashlib.sha256(data).hexdigest()
    record = await attachments.queue(session_id, filename, "text/csv", sha, data, limit=5)
    assert record is not None
    event = AttachmentUploaded(
        session_id=session_id,
        attachment_id=record.attachment_id,
        filename=filename,
        content_type="text/csv",
        size=len(data),
        sha256=sha,
    )
    await reader.uploaded(event)
    await reader.uploaded(event)  # a redelivery reads nothing twice
    done = await attachments.get(session_id, record.attachment_id)
    assert done is not None
    return done


async def ask(kb: KnowledgeBase, attachments: SessionAttachments, session_id: str) -> ReplyCompleted:
    completions = Recorder()
    answerer = TurnAnswerer(
        retriever=kb,
        generator=ExtractiveGenerator(kb.embedder),
        escalation=EscalationPolicy({}, 0.9),
        retrieval=RetrievalOptions(),
        escalate_on_no_answer=True,
        deltas=Recorder(),
        completions=completions,
        metrics=AgentMetrics(CollectorRegistry()),
        attachments=attachments,
    )
    await answerer.answer(TurnRequested(session_id=session_id, message_id="m1", content=QUESTION))
    (completed,) = completions.events
    assert isinstance(completed, ReplyCompleted)
    return completed


async def test_an_attachment_answers_its_own_session_only(kb: KnowledgeBase, redis: Redis, unique: str) -> None:
    store = session_store(redis, unique)
    (owner, _), (other, _) = await store.create(None), await store.create(None)
    attachments = SessionAttachments(redis, SessionCipher([DEVELOPMENT_ENCRYPTION_KEY]), unique)
    reader = AttachmentReader(kb, attachments, ParseSandbox(ParseLimits()), max_passages=100)
    chunks_before = await kb.index.count()

    record = await attach(attachments, reader, owner.session_id, "summit-plans.csv", SLIP)
    assert record.status == "ready"
    assert record.passages
    assert await kb.index.count() == chunks_before  # never in the shared index

    answered = (await ask(kb, attachments, owner.session_id)).reply
    assert "29 EUR" in answered.content
    assert answered.content.startswith("According to the file you attached (summit-plans.csv):")
    assert answered.sources[0].document_id == record.attachment_id
    assert answered.sources[0].attachment
    assert answered.sources[0].title == "summit-plans.csv"

    elsewhere = await ask(kb, attachments, other.session_id)
    assert "29 EUR" not in elsewhere.reply.content
    assert record.attachment_id not in [s.document_id for s in elsewhere.reply.sources]


async def test_a_hostile_attachment_fails_with_its_reason(kb: KnowledgeBase, redis: Redis, unique: str) -> None:
    store = session_store(redis, unique)
    session, _ = await store.create(None)
    attachments = SessionAttachments(redis, SessionCipher([DEVELOPMENT_ENCRYPTION_KEY]), unique)
    reader = AttachmentReader(kb, attachments, ParseSandbox(ParseLimits()), max_passages=100)

    record = await attach(attachments, reader, session.session_id, "bomb.docx", zip_bomb_docx())
    assert record.status == "failed"
    assert record.error is not None
    assert "compressed 1,027:1" in record.error
    assert await attachments.ready(session.session_id) == []
    assert await attachments.blob(session.session_id, record.attachment_id) is None


class BrokenParser:
    async def extract_text(self, filename: str, data: bytes) -> str:
        raise RuntimeError("a bug in a parser")


async def test_an_attachment_that_breaks_the_reader_says_so(kb: KnowledgeBase, redis: Redis, unique: str) -> None:
    store = session_store(redis, unique)
    session, _ = await store.create(None)
    attachments = SessionAttachments(redis, SessionCipher([DEVELOPMENT_ENCRYPTION_KEY]), unique)
    reader = AttachmentReader(kb, attachments, BrokenParser(), max_passages=100)
    record = await attachments.queue(
        session.session_id, "slip.csv", "text/csv", hashlib.sha256(SLIP).hexdigest(), SLIP, 5
    )
    assert record is not None
    event = AttachmentUploaded(
        session_id=session.session_id,
        attachment_id=record.attachment_id,
        filename="slip.csv",
        content_type="text/csv",
        size=len(SLIP),
        sha256=record.sha256,
    )
    with pytest.raises(RuntimeError, match="a bug in a parser"):  # to the dead letters, as any poison event
        await reader.uploaded(event)
    failed = await attachments.get(session.session_id, record.attachment_id)
    assert failed is not None
    assert (failed.status, failed.error) == ("failed", "the file could not be read (RuntimeError)")
