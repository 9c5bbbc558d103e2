"""Indexing against the real Qdrant local mode and embedding model, asserted
on the index itself: a re-upload replaces, a shorter version leaves no stale
chunks, a deleted document leaves the index."""

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from supportdesk_contracts.events import DocumentDeleted, DocumentUploaded
from supportdesk_documents.registry import DocumentRegistry, document_id_for
from supportdesk_ingest.indexing import Indexer
from supportdesk_ingest.limits import ParseLimits
from supportdesk_ingest.sandbox import ParseSandbox
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_knowledge.embedder import Embedder
from supportdesk_knowledge.index import KnowledgeIndex, open_client
from supportdesk_knowledge.settings import KnowledgeSettings

pytestmark = pytest.mark.integration

GIFT_CARDS = "Gift cards never expire and can be used on any order, online or in store."
LONG = " ".join(f"Section {i}: the warehouse in region {i} ships parcels on weekday {i % 5}." for i in range(60))


@pytest.fixture
async def kb(qdrant_path: str, embedder: Embedder) -> AsyncIterator[KnowledgeBase]:
    settings = KnowledgeSettings(qdrant_path=qdrant_path, rag_chunk_tokens=48, rag_chunk_overlap_tokens=0)
    index = KnowledgeIndex(open_client(settings), settings.qdrant_collection, embedder.dimension, server=False)
    await index.ensure_collection()
    kb = KnowledgeBase(settings, embedder, index)
    yield kb
    await kb.close()


async def upload(indexer: Indexer, registry: DocumentRegistry, filename: str, data: bytes) -> str:
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    document_id = document_id_for(sha)
    await registry.queue(document_id, filename, "text/plain", sha, data)
    event = DocumentUploaded(
        document_id=document_id,
        filename=filename,
        content_type="text/plain",
        size=len(data),
        sha256=sha,
        blob_key=registry.blob_key(document_id),
    )
    await indexer.uploaded(event)
    return document_id


async def test_a_reupload_replaces_and_a_delete_removes(kb: KnowledgeBase, redis: Redis, unique: str) -> None:
    registry = DocumentRegistry(redis, unique)
    indexer = Indexer(kb, registry, ParseSandbox(ParseLimits()))
    other = await upload(indexer, registry, "warehouses.txt", LONG.encode())
    gift = await upload(indexer, registry, "gift-cards.txt", GIFT_CARDS.encode())
    total = await kb.index.count()
    assert await kb.index.count(gift) == 1
    assert await kb.index.count(other) > 5

    assert await upload(indexer, registry, "gift-cards.txt", GIFT_CARDS.encode()) == gift
    assert await kb.index.count() == total, "a re-upload must not add chunks"

    hits = await kb.search("Do gift cards expire?", 4, 0.3)
    assert hits[0].document_id == gift
    await indexer.deleted(DocumentDeleted(document_id=gift))
    assert await kb.index.count(gift) == 0
    assert gift not in [h.document_id for h in await kb.search("Do gift cards expire?", 4, 0.0)]
    assert await registry.get(gift) is None


async def test_a_shorter_version_leaves_no_stale_chunks(kb: KnowledgeBase) -> None:
    long_chunks = await kb.add_document("doc", "Warehouses", LONG)
    short_chunks = await kb.add_document("doc", "Warehouses", "Section 0: the only warehouse ships daily.")
    assert long_chunks > short_chunks == 1
    assert await kb.index.count("doc") == 1
    assert all("region 42" not in h.text for h in await kb.search("region 42 warehouse", 10, 0.0))


async def test_sample_knowledge_is_marked_and_leaves_when_the_first_own_document_is_indexed(
    kb: KnowledgeBase, redis: Redis, unique: str
) -> None:
    registry = DocumentRegistry(redis, unique)
    indexer = Indexer(kb, registry, ParseSandbox(ParseLimits()))
    loaded = await indexer.load_samples()
    assert loaded > 0
    listed = await registry.list()
    assert len(listed) == loaded
    assert all(r.sample for r in listed)
    assert all(h.sample for h in await kb.search("How long does shipping take?", 4, 0.0))
    assert await indexer.load_samples() == 0, "loaded once"

    gift = await upload(indexer, registry, "gift-cards.txt", GIFT_CARDS.encode())

    assert await kb.index.count(samples=True) == 0
    assert await kb.index.count() == await kb.index.count(gift)
    assert [(r.document_id, r.sample) for r in await registry.list()] == [(gift, False)]
    assert all(not h.sample for h in await kb.search("How long does shipping take?", 4, 0.0))
    assert await indexer.load_samples() == 0, "never again beside own documents"


async def test_sample_knowledge_stays_when_told_to(kb: KnowledgeBase, redis: Redis, unique: str) -> None:
    registry = DocumentRegistry(redis, unique)
    indexer = Indexer(kb, registry, ParseSandbox(ParseLimits()), samples_retire=False)
    loaded = await indexer.load_samples()
    await upload(indexer, registry, "gift-cards.txt", GIFT_CARDS.encode())
    assert len(await registry.samples()) == loaded
    assert await kb.index.count(samples=True) >= loaded


async def test_a_version_indexed_twice_or_an_older_one_late_leaves_the_newest(kb: KnowledgeBase) -> None:
    """Two replicas may index one event (a redelivery during a rebalance), or
    an older event may come late: neither may delete the newest version."""
    assert await kb.add_document("doc", "Gift cards", GIFT_CARDS, version=2) == 1
    assert await kb.add_document("doc", "Gift cards", GIFT_CARDS, version=2) == 1
    assert await kb.index.count("doc") == 1
    await kb.add_document("doc", "Gift cards", "Gift cards expire after one year.", version=1)
    hits = await kb.search("Do gift cards expire?", 4, 0.0)
    assert [h.text for h in hits if h.document_id == "doc"] == [GIFT_CARDS]


async def test_samples_indexed_before_they_were_marked_leave_too(kb: KnowledgeBase, redis: Redis, unique: str) -> None:
    from supportdesk_ingest.samples import sample_documents, sample_ids

    registry = DocumentRegistry(redis, unique)
    indexer = Indexer(kb, registry, ParseSandbox(ParseLimits()))
    (title, body), document_id = sample_documents()[0], sample_ids()[0]
    await kb.add_document(document_id, title, body)  # as the worker did before samples were marked
    assert await indexer.load_samples() == 0, "not loaded beside what looks like an own document"
    gift = await upload(indexer, registry, "gift-cards.txt", GIFT_CARDS.encode())
    assert await kb.index.count(document_id) == 0
    assert await kb.index.count() == await kb.index.count(gift)
