"""Wiring of the session worker: the one place its clients meet its handlers."""

import httpx
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Gauge
from redis.asyncio import Redis

from supportdesk_platform.kafka import TopicProvisioner
from supportdesk_platform.lifecycle import Component, Service
from supportdesk_platform.ops import Health, redis_check
from supportdesk_session.handlers import build_router, subscribe_webhook
from supportdesk_session.reaper import SessionReaper
from supportdesk_session.settings import SessionWorkerSettings
from supportdesk_session.unclaimed import UnclaimedHandoffs
from supportdesk_session.webhook import EscalationWebhook, WebhookPolicy
from supportdesk_sessions.cipher import SessionCipher
from supportdesk_sessions.recorder import SessionRecorder


def build_recorder(settings: SessionWorkerSettings, redis: Redis) -> SessionRecorder:
    return SessionRecorder(
        redis,
        SessionCipher(settings.encryption_keys),
        settings.session_ttl_seconds,
        settings.redis_key_prefix,
        kept=settings.session_max_messages,
    )


def session_component(
    settings: SessionWorkerSettings, redis: Redis, registry: CollectorRegistry | None = None
) -> Component:
    store = build_recorder(settings, redis)
    inbound = build_router(settings, store, registry)
    router = inbound.router

    async def finish_events() -> None:
        # Before the broker stops: events taken finish (and commit) or are
        # left to be redelivered to the group's next member.
        await inbound.dispatcher.drain(settings.shutdown_drain_seconds)

    reaper = SessionReaper(
        store, router.publisher(settings.topics.chat_inbound, title="session:expiries"), settings.session_reap_seconds
    )
    unclaimed = UnclaimedHandoffs(
        store,
        router.publisher(settings.topics.chat_outbound, title="session:unclaimed"),
        router.publisher(settings.topics.escalations, title="session:unclaimed-escalations"),
        settings.handoff_claim_timeout_seconds,
        settings.handoff_sweep_seconds,
    )
    if registry is not None:
        Gauge("supportdesk_sessions_active", "Sessions that have not expired.", registry=registry).set_function(
            lambda: reaper.active
        )
    component = Component(
        "session",
        router=router,
        checks={"redis": redis_check(redis)},
        details={"active_sessions": lambda: reaper.active, "events_in_flight": lambda: inbound.dispatcher.in_flight},
        on_start=[reaper.periodic.start, unclaimed.periodic.start],
        on_drain=[reaper.periodic.stop, unclaimed.periodic.stop, finish_events],
    )
    if settings.escalation_webhook_url is not None:
        client = httpx.AsyncClient()
        subscribe_webhook(router, settings, EscalationWebhook(webhook_policy(settings), store, client), registry)
        component.closers.append(client.aclose)
    return component


def webhook_policy(settings: SessionWorkerSettings) -> WebhookPolicy:
    assert settings.escalation_webhook_url is not None
    assert settings.escalation_webhook_secret is not None
    return WebhookPolicy(
        url=str(settings.escalation_webhook_url),
        secret=settings.escalation_webhook_secret.get_secret_value(),
        attempts=settings.escalation_webhook_attempts,
        backoff_seconds=settings.escalation_webhook_backoff_seconds,
    )


def build_worker(
    settings: SessionWorkerSettings,
    *,
    redis: Redis | None = None,
    broker: KafkaBroker | None = None,
    provisioner: TopicProvisioner | None = None,
    health: Health | None = None,
) -> Service:
    """The session worker; clients not passed in are created from `settings`
    (and then closed by the worker when it stops)."""
    own_redis = redis is None
    redis = redis or Redis.from_url(str(settings.redis_url))
    health = health or Health("session")
    component = session_component(settings, redis, health.registry)
    if own_redis:
        component.closers.append(redis.aclose)
    return Service("session", settings, health, [component], broker=broker, provisioner=provisioner)
