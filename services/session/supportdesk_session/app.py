"""Wiring of the session worker: the one place its clients are created."""

from redis.asyncio import Redis

from supportdesk_platform.kafka import build_broker
from supportdesk_platform.ops import Health, redis_check
from supportdesk_platform.sessions import SessionCipher, SessionStore
from supportdesk_platform.worker import Worker
from supportdesk_session.handlers import build_router
from supportdesk_session.settings import SessionWorkerSettings


def build_store(settings: SessionWorkerSettings, redis: Redis) -> SessionStore:
    return SessionStore(
        redis, SessionCipher(settings.encryption_keys), settings.session_ttl_seconds, settings.redis_key_prefix
    )


def build_worker(settings: SessionWorkerSettings, redis: Redis | None = None) -> Worker:
    redis = redis or Redis.from_url(str(settings.redis_url))
    health = Health("session")
    broker = build_broker(settings, "supportdesk-session", health.registry)
    broker.include_router(build_router(settings, build_store(settings, redis)))
    health.checks["redis"] = redis_check(redis)
    worker = Worker("session", settings, broker, health)
    worker.resources.push_async_callback(redis.aclose)
    return worker
