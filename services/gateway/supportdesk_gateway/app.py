"""Assembles the gateway: clients created once in the lifespan, routes included."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from redis.exceptions import RedisError

from supportdesk_gateway.api import documents, messages, meta, sessions, ws
from supportdesk_gateway.context import GatewayContext
from supportdesk_gateway.hub import Hub
from supportdesk_gateway.metrics import GatewayMetrics
from supportdesk_gateway.publisher import EventPublisher
from supportdesk_gateway.relay import Relay
from supportdesk_gateway.settings import GatewaySettings
from supportdesk_platform.documents import DocumentRegistry
from supportdesk_platform.kafka import broker_ready, build_broker, ensure_topics
from supportdesk_platform.ops import Health, ops_router, redis_check
from supportdesk_platform.sessions import SessionCipher, SessionStore

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 2


def build_context(settings: GatewaySettings, redis: Redis | None = None) -> GatewayContext:
    redis = redis or Redis.from_url(str(settings.redis_url))
    hub = Hub(settings.ws_send_queue)
    relay = Relay(settings, hub)
    health = Health("gateway")
    broker = build_broker(settings, f"supportdesk-gateway-{settings.replica_id}", health.registry)
    broker.include_router(relay.router)
    health.checks.update(
        {"kafka": lambda: broker_ready(broker), "redis": redis_check(redis), "outbound_relay": relay.ready}
    )
    health.details["websockets"] = lambda: hub.socket_count
    return GatewayContext(
        settings=settings,
        redis=redis,
        broker=broker,
        store=SessionStore(
            redis, SessionCipher(settings.encryption_keys), settings.session_ttl_seconds, settings.redis_key_prefix
        ),
        documents=DocumentRegistry(redis, settings.redis_key_prefix),
        hub=hub,
        relay=relay,
        events=EventPublisher(broker, settings.topics, settings.replica_id),
        health=health,
        metrics=GatewayMetrics(health.registry, hub),
    )


def create_app(settings: GatewaySettings | None = None, context: GatewayContext | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    context = context or build_context(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings)
        await context.broker.start()
        try:
            yield
        finally:
            context.hub.close_all()
            await context.broker.stop()
            await context.redis.aclose()

    app = FastAPI(title="SupportDesk gateway", version="0.1.0", lifespan=lifespan)
    app.state.context = context
    for module in (meta, sessions, messages, documents, ws):
        app.include_router(module.router)
    app.include_router(ops_router(context.health))

    @app.exception_handler(RedisError)
    @app.exception_handler(KafkaError)
    async def dependency_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # A store or broker outage is the server's problem, said plainly; the
        # client may retry (a message id makes the retry safe).
        log.warning("dependency unavailable", extra={"path": request.url.path, "error": type(exc).__name__})
        return JSONResponse(
            {"detail": "a backing service is unavailable; retry shortly"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    return app
