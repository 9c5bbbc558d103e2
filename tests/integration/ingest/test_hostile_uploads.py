"""Hostile uploads through the real ingest worker (Kafka, Redis, Qdrant local
mode, the embedding model): each ends `failed` with its reason, once; its
message is acknowledged, not retried or dead-lettered; the worker's event
loop never stalls and its memory does not grow, and the next document is
indexed. Before parsing was sandboxed, the first of these blocked the worker
for seconds to minutes and took it to gigabytes."""

import asyncio
import hashlib
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from builders import ingest_settings, watching
from supportdesk_contracts.events import DocumentUploaded
from supportdesk_documents.registry import DocumentRecord, DocumentRegistry, document_id_for
from supportdesk_ingest.app import build_worker
from supportdesk_ingest.indexing import DocumentParser
from supportdesk_ingest.limits import ParseLimits
from supportdesk_ingest.sandbox import ParseSandbox
from supportdesk_ingest.settings import IngestSettings
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_knowledge.embedder import Embedder
from supportdesk_knowledge.index import KnowledgeIndex, open_client
from supportdesk_knowledge.settings import KnowledgeSettings
from supportdesk_platform.lifecycle import Service
from unit.ingest.hostile_documents import (
    deeply_nested_docx,
    huge_dimension_xlsx,
    many_paragraphs_docx,
    quadratic_html,
    zip_bomb_docx,
)

pytestmark = pytest.mark.integration

MISBEHAVING = Path(__file__).parents[2] / "unit" / "ingest" / "misbehaving_parser.py"
MB = 1024 * 1024
GIFT_CARDS = b"Gift cards never expire and can be used on any order, online or in store."


class Uploads:
    """Uploads as the gateway makes them (bytes in the registry, event on
    the topic), and what became of them."""

    def __init__(self, settings: IngestSettings, registry: DocumentRegistry, probe: KafkaBroker) -> None:
        self.settings = settings
        self.registry = registry
        self.probe = probe
        self.published = 0

    async def send(self, filename: str, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        document_id = document_id_for(sha)
        await self.registry.queue(document_id, filename, "application/octet-stream", sha, data)
        event = DocumentUploaded(
            document_id=document_id,
            filename=filename,
            content_type="application/octet-stream",
            size=len(data),
            sha256=sha,
            blob_key=self.registry.blob_key(document_id),
        )
        await self.probe.publish(event, self.settings.topics.document_uploads, key=document_id.encode())
        self.published += 1
        return document_id

    async def outcome(self, document_id: str, timeout: float = 30) -> DocumentRecord:
        async with asyncio.timeout(timeout):
            while True:
                record = await self.registry.get(document_id)
                if record is not None and record.status in ("indexed", "failed"):
                    return record
                await asyncio.sleep(0.05)

    async def offsets(self) -> tuple[int, int]:
        """(uploads the worker's group has acknowledged, events dead-lettered);
        the topics have one partition each."""
        # A consumer of the group that never subscribes: it asks the broker
        # for offsets without joining the group.
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.settings.consumer_group,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            dead_letters = TopicPartition(self.settings.topics.dead_letters, 0)
            committed = await consumer.committed(TopicPartition(self.settings.topics.document_uploads, 0))
            return committed or 0, (await consumer.end_offsets([dead_letters]))[dead_letters]
        finally:
            await consumer.stop()

    async def acknowledged_and_none_dead_lettered(self, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while (acknowledged := (await self.offsets())[0]) < self.published:
                await asyncio.sleep(0.1)
        assert acknowledged == self.published
        # A dead letter is published before its message is acknowledged.
        assert (await self.offsets())[1] == 0, "dead-lettered"


StartWorker = Callable[..., Awaitable[Uploads]]


@pytest.fixture
async def start_worker(
    kafka_bootstrap: str, redis_url: str, redis: Redis, unique: str, qdrant_path: str, embedder: Embedder
) -> AsyncIterator[StartWorker]:
    knowledge = KnowledgeSettings(qdrant_path=qdrant_path)
    index = KnowledgeIndex(open_client(knowledge), knowledge.qdrant_collection, embedder.dimension, server=False)
    await index.ensure_collection()
    kb = KnowledgeBase(knowledge, embedder, index)
    probe = KafkaBroker(kafka_bootstrap)
    workers: list[Service] = []

    async def start(parser: DocumentParser | None = None, **options: Any) -> Uploads:
        """The ingest worker (one a test) with these settings, or this parser."""
        settings = ingest_settings(
            kafka_bootstrap,
            redis_url,
            unique,
            knowledge=knowledge,
            **options,
        )
        worker = await build_worker(settings, knowledge=kb, redis=redis, parser=parser)
        await worker.start()
        workers.append(worker)
        await probe.start()
        return Uploads(settings, DocumentRegistry(redis, unique), probe)

    yield start
    await probe.stop()
    for worker in workers:
        await worker.stop()
    await kb.close()


@contextmanager
def no_slower_than(seconds: float) -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < seconds


@pytest.mark.timeout(60)
async def test_hostile_uploads_end_failed_once_and_the_worker_keeps_going(start_worker: StartWorker) -> None:
    hostile = {
        # (filename, bytes): the status it ends in, and the reason of a failure.
        ("hours.xlsx", huge_dimension_xlsx()): ("indexed", None),
        ("bomb.docx", zip_bomb_docx()): ("failed", r"^word/document.xml is compressed 1,\d\d\d:1, more than the 100:1"),
        ("long.docx", many_paragraphs_docx(101_000)): ("failed", r"more than the 100,000 paragraphs allowed$"),
        ("deep.docx", deeply_nested_docx()): ("failed", r"^cannot read .docx file: Excessive depth in document"),
        ("hours.html", quadratic_html()): ("indexed", None),
    }
    uploads = await start_worker()
    warm_up = await uploads.send("gift-cards.txt", GIFT_CARDS)
    assert (await uploads.outcome(warm_up)).status == "indexed"

    async with watching() as watch:
        sent = {await uploads.send(name, data): expected for (name, data), expected in hostile.items()}
        outcomes = {document_id: await uploads.outcome(document_id) for document_id in sent}
        after = await uploads.send("gift-cards-2.txt", GIFT_CARDS + b" Really.")
        assert (await uploads.outcome(after)).status == "indexed", "the worker still indexes"

    for document_id, (status, reason) in sent.items():
        record = outcomes[document_id]
        assert record.status == status, (record.filename, record.error)
        if reason is not None:
            assert record.error is not None
            assert re.search(reason, record.error), (record.filename, record.error)
    assert watch.longest_gap < 0.5, f"the event loop stalled for {watch.longest_gap:.2f} s"
    growth = watch.peak_rss - watch.baseline_rss
    assert growth < 64 * MB, f"the worker's RSS grew by {growth // MB} MB"

    # Once: every message acknowledged, none dead-lettered, and no failure
    # parsed again (a second attempt would find its bytes gone: "expired").
    await uploads.acknowledged_and_none_dead_lettered()
    for document_id in sent:
        assert await uploads.registry.get(document_id) == outcomes[document_id]


@pytest.mark.timeout(60)
async def test_a_parse_over_its_time_ends_failed_and_the_next_document_is_indexed(start_worker: StartWorker) -> None:
    # On its own: a tight wall-clock limit beside documents that must pass
    # it fails them on a loaded machine (a CI run did so to a small xlsx).
    uploads = await start_worker(parse_timeout_seconds=2)
    slow = await uploads.send("slow.docx", many_paragraphs_docx(99_000))  # about 7 s to parse here
    after = await uploads.send("gift-cards.txt", GIFT_CARDS)
    record = await uploads.outcome(slow)
    assert (record.status, record.error) == ("failed", "took longer than the 2 s allowed to parse")
    assert (await uploads.outcome(after)).status == "indexed"
    await uploads.acknowledged_and_none_dead_lettered()


def misbehaving(mode: str) -> ParseSandbox:
    return ParseSandbox(ParseLimits(memory_mb=256), [sys.executable, "-I", "-B", str(MISBEHAVING), mode])


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("segfault", "the parser crashed (SIGSEGV)"), ("hoard", "exceeded the parse memory limit (256 MB)")],
)
async def test_a_parser_that_crashes_or_hoards_fails_the_document_once(
    start_worker: StartWorker, mode: str, reason: str
) -> None:
    uploads = await start_worker(parser=misbehaving(mode))
    document_id = await uploads.send("notes.txt", b"Opening hours: 9-5")
    with no_slower_than(5):
        record = await uploads.outcome(document_id)
    assert (record.status, record.error) == ("failed", reason)
    await uploads.acknowledged_and_none_dead_lettered()
    assert await uploads.registry.get(document_id) == record
