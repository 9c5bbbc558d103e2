"""Wiring of the ingest worker: the one place its clients meet its handlers."""

from pathlib import Path

from faststream.kafka import KafkaBroker, KafkaRouter
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from supportdesk_documents.registry import DocumentRegistry
from supportdesk_ingest.handlers import build_router
from supportdesk_ingest.indexing import AttachmentReader, DocumentParser, Indexer
from supportdesk_ingest.metrics import IngestMetrics
from supportdesk_ingest.sandbox import ParseSandbox
from supportdesk_ingest.settings import IngestSettings
from supportdesk_ingest.sources import DocumentSources, SourcePolicy
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_platform.kafka import TopicProvisioner
from supportdesk_platform.lifecycle import Component, Service
from supportdesk_platform.ops import Health, redis_check
from supportdesk_sessions.attachments import SessionAttachments
from supportdesk_sessions.cipher import SessionCipher


def ingest_component(
    settings: IngestSettings,
    knowledge: KnowledgeBase,
    redis: Redis,
    parser: DocumentParser | None = None,
    metrics: CollectorRegistry | None = None,
) -> Component:
    """Ingest's subscriber, checks and start-up work, for a process of its own
    or one it shares with the agent (Qdrant local mode: one process per folder).
    Documents are parsed in a child process per document unless `parser` says otherwise."""
    registry = DocumentRegistry(redis, settings.redis_key_prefix)
    parser = parser or ParseSandbox(settings.parse_limits)
    router = KafkaRouter()
    # Outcomes for producers of the upload topic to follow.
    statuses = router.publisher(settings.topics.document_status, title="ingest:status")
    policy = SourcePolicy(
        max_bytes=settings.max_document_bytes,
        shared_root=Path(settings.shared_root) if settings.shared_root else None,
        timeout_seconds=settings.fetch_timeout_seconds,
        allow_private=settings.fetch_allow_private,
        s3_buckets=settings.s3_bucket_names,
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
    )
    indexer = Indexer(
        knowledge,
        registry,
        parser,
        settings.sample_knowledge_retires,
        sources=DocumentSources(registry, policy),
        statuses=statuses,
        metrics=IngestMetrics(metrics) if metrics is not None else None,
    )
    attachments = SessionAttachments(redis, SessionCipher(settings.encryption_keys), settings.redis_key_prefix)
    reader = AttachmentReader(knowledge, attachments, parser, settings.attachment_max_passages)
    component = Component(
        "ingest",
        router=build_router(settings, indexer, reader, router, metrics),
        checks={"redis": redis_check(redis), "qdrant": knowledge.index.ready},
    )
    if settings.wants_samples:

        async def load_samples() -> None:
            await indexer.load_samples()

        component.on_start.append(load_samples)
    return component


async def build_worker(
    settings: IngestSettings,
    *,
    knowledge: KnowledgeBase | None = None,
    redis: Redis | None = None,
    broker: KafkaBroker | None = None,
    provisioner: TopicProvisioner | None = None,
    health: Health | None = None,
    parser: DocumentParser | None = None,
) -> Service:
    """The ingest worker; clients not passed in are created from `settings`
    (and then closed by the worker when it stops)."""
    kb = knowledge or await KnowledgeBase.open(settings.knowledge)
    client = redis or Redis.from_url(str(settings.redis_url))
    health = health or Health("ingest")
    component = ingest_component(settings, kb, client, parser, metrics=health.registry)
    if knowledge is None:
        component.closers.append(kb.close)
    if redis is None:
        component.closers.append(client.aclose)
    return Service("ingest", settings, health, [component], broker=broker, provisioner=provisioner)
