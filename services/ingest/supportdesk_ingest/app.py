"""Wiring of the ingest worker: the one place its clients are created."""

from redis.asyncio import Redis

from supportdesk_ingest.handlers import build_router
from supportdesk_ingest.indexing import Indexer
from supportdesk_ingest.settings import IngestSettings
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_platform.documents import DocumentRegistry
from supportdesk_platform.kafka import build_broker
from supportdesk_platform.ops import Health, redis_check
from supportdesk_platform.worker import Worker


async def attach_to(worker: Worker, settings: IngestSettings, kb: KnowledgeBase) -> Indexer:
    """Adds ingest's subscriber, checks and start-up work to a worker (its own,
    or the agent's when both share Qdrant local mode)."""
    redis = Redis.from_url(str(settings.redis_url))
    worker.resources.push_async_callback(redis.aclose)
    indexer = Indexer(kb, DocumentRegistry(redis, settings.redis_key_prefix))
    worker.broker.include_router(build_router(settings, indexer))
    worker.health.checks.setdefault("redis", redis_check(redis))
    worker.health.checks.setdefault("qdrant", kb.index.ready)
    if settings.wants_samples:

        async def load_samples() -> None:
            await indexer.load_samples()

        worker.after_start.append(load_samples)
    return indexer


async def build_worker(settings: IngestSettings, kb: KnowledgeBase | None = None) -> Worker:
    kb = kb or await KnowledgeBase.open(settings.knowledge)
    health = Health("ingest")
    worker = Worker("ingest", settings, build_broker(settings, "supportdesk-ingest", health.registry), health)
    worker.resources.push_async_callback(kb.close)
    await attach_to(worker, settings, kb)
    return worker
