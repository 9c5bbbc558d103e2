"""An upload while Qdrant is unreachable, through the real ingest worker and
broker: retried with backoff, then given up with the attempts counted, and
the document ends `failed` with the reason instead of staying `processing`
for good (as it did when a Qdrant connection error was a poison event)."""

import asyncio
import hashlib
import json

import pytest
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from qdrant_client import AsyncQdrantClient
from redis.asyncio import Redis

from builders import ingest_settings
from devstack import free_port
from supportdesk_contracts.events import DocumentUploaded
from supportdesk_documents.registry import DocumentRegistry, document_id_for
from supportdesk_ingest.app import build_worker
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_knowledge.embedder import Embedder
from supportdesk_knowledge.index import KnowledgeIndex
from supportdesk_knowledge.settings import KnowledgeSettings

pytestmark = pytest.mark.integration

GIFT_CARDS = b"Gift cards never expire and can be used on any order, online or in store."


async def test_an_upload_while_qdrant_is_down_ends_failed_with_its_attempts(
    kafka_bootstrap: str, redis_url: str, redis: Redis, unique: str, embedder: Embedder
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens
    knowledge = KnowledgeSettings(qdrant_url=down)
    client = AsyncQdrantClient(url=down, timeout=1, check_compatibility=False)
    kb = KnowledgeBase(knowledge, embedder, KnowledgeIndex(client, knowledge.qdrant_collection, 384, server=True))
    settings = ingest_settings(
        kafka_bootstrap,
        redis_url,
        unique,
        knowledge=knowledge,
        event_retry_attempts=3,
        event_retry_initial_seconds=0.05,
        event_retry_max_seconds=0.1,
    )
    worker = await build_worker(settings, knowledge=kb, redis=redis)
    probe = KafkaBroker(kafka_bootstrap)
    dead: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    @probe.subscriber(settings.topics.dead_letters, auto_offset_reset="earliest", fetch_max_wait_ms=5)
    async def on_dead(message: KafkaMessage) -> None:
        await dead.put(json.loads(message.body))

    await worker.start()
    await probe.start()
    try:
        registry = DocumentRegistry(redis, unique)
        sha = hashlib.sha256(GIFT_CARDS).hexdigest()
        document_id = document_id_for(sha)
        await registry.queue(document_id, "gift-cards.txt", "text/plain", sha, GIFT_CARDS)
        event = DocumentUploaded(
            document_id=document_id,
            filename="gift-cards.txt",
            content_type="text/plain",
            size=len(GIFT_CARDS),
            sha256=sha,
            blob_key=registry.blob_key(document_id),
        )
        await probe.publish(event, settings.topics.document_uploads, key=document_id.encode())
        letter = await asyncio.wait_for(dead.get(), 60)
        async with asyncio.timeout(10):
            while (record := await registry.get(document_id)) is None or record.status != "failed":
                await asyncio.sleep(0.05)
    finally:
        await probe.stop()
        await worker.stop()
        await client.close()
    assert letter["attempts"] == 3
    assert letter["consumer"] == "ingest"
    assert record.error is not None
    assert record.error.startswith("not indexed: a dependency stayed unavailable after 3 attempts: IndexOutage")
    assert record.error.endswith("; upload it again or replay its dead letter")
    assert await registry.blob(document_id) == GIFT_CARDS  # kept, so a replay can index it
