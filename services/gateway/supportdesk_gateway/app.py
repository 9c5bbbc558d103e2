"""Assembles the gateway: one function builds it from its settings and any
clients the caller passes in (tests pass FastStream's in-memory broker)."""

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Match, Route

from supportdesk_contracts.frames import frame_schemas
from supportdesk_documents.registry import DocumentRegistry
from supportdesk_gateway.api import attachments, documents, handoff, messages, meta, sessions, ws
from supportdesk_gateway.api.schemas import problems
from supportdesk_gateway.context import GatewayContext
from supportdesk_gateway.fingerprints import Fingerprints
from supportdesk_gateway.hub import Hub
from supportdesk_gateway.limits import ClientAddress, RateLimited, RateLimiter, RequestRateLimit
from supportdesk_gateway.metrics import GatewayMetrics
from supportdesk_gateway.publisher import EventPublisher
from supportdesk_gateway.relay import Relay
from supportdesk_gateway.requests import HEADER, JsonTooLarge, RequestId, request_id_of
from supportdesk_gateway.settings import GatewaySettings
from supportdesk_gateway.sweeper import SessionSweeper
from supportdesk_gateway.timing import SocketTurns
from supportdesk_platform.kafka import TopicProvisioner
from supportdesk_platform.lifecycle import Component, Service
from supportdesk_platform.ops import Health, ops_router, redis_check
from supportdesk_platform.telemetry import tracing_enabled, untrusted_edge
from supportdesk_sessions.access import GatewaySessions
from supportdesk_sessions.attachments import SessionAttachments
from supportdesk_sessions.cipher import SessionCipher
from supportdesk_sessions.identity import IdentityVerifier
from supportdesk_sessions.recorder import SessionRecorder

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 2
# After asking sockets to close, a moment for the close frames to go out
# before the HTTP server stops.
SOCKET_CLOSE_GRACE_SECONDS = 0.5
# Multipart boundaries and part headers around an upload's bytes.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# Regular expressions (comma-separated) of URLs that get no HTTP span: the
# chat socket, and the probes and scrapes that would drown the traces.
UNTRACED_PATHS = r"/ws\b,/health,/metrics"


@dataclass
class Gateway:
    app: FastAPI
    service: Service
    context: GatewayContext


def build_gateway(
    settings: GatewaySettings,
    *,
    redis: Redis | None = None,
    broker: KafkaBroker | None = None,
    provisioner: TopicProvisioner | None = None,
) -> Gateway:
    """The gateway; clients not passed in are created from `settings` (and
    then closed by the gateway when it stops)."""
    client = redis or Redis.from_url(str(settings.redis_url))
    health = Health("gateway")
    hub = Hub(settings.ws_send_queue)
    metrics = GatewayMetrics(health.registry, hub)
    socket_turns = SocketTurns(metrics, settings.reply_timeout_seconds)
    relay = Relay(settings, hub, socket_turns)

    sessions = GatewaySessions(
        client,
        SessionCipher(settings.encryption_keys),
        settings.session_ttl_seconds,
        settings.redis_key_prefix,
        IdentityVerifier(settings.identity_secret.get_secret_value() if settings.identity_secret else None),
    )
    sweeper = SessionSweeper(hub, sessions, settings.session_sweep_seconds)

    async def close_sockets() -> None:
        hub.inbox.close_all()
        if hub.close_all():
            await asyncio.sleep(SOCKET_CLOSE_GRACE_SECONDS)

    component = Component(
        "gateway",
        router=relay.router,
        checks={"redis": redis_check(client), "outbound_relay": relay.ready},
        details={
            "websockets": lambda: hub.socket_count,
            "active_sessions": lambda: sweeper.active_sessions,
            "operator_feeds": lambda: hub.inbox.feeds,
        },
        on_start=[sweeper.periodic.start, socket_turns.sweep.start],
        on_drain=[sweeper.periodic.stop, socket_turns.sweep.stop, close_sockets],
        closers=[] if redis is not None else [client.aclose],
    )
    service = Service(
        "gateway",
        settings,
        health,
        [component],
        broker=broker,
        provisioner=provisioner,
        client_id=f"supportdesk-gateway-{settings.replica_id}",
    )
    clients = ClientAddress(settings.trusted_proxies.split(","))
    context = GatewayContext(
        settings=settings,
        sessions=sessions,
        desk=SessionRecorder(
            client,
            sessions.cipher,
            settings.session_ttl_seconds,
            settings.redis_key_prefix,
            kept=settings.session_max_messages,
        ),
        documents=DocumentRegistry(client, settings.redis_key_prefix),
        attachments=SessionAttachments(client, sessions.cipher, settings.redis_key_prefix),
        hub=hub,
        events=EventPublisher(service.broker, settings.topics, settings.replica_id),
        metrics=metrics,
        socket_turns=socket_turns,
        limiter=RateLimiter(
            client, settings.redis_key_prefix, enabled=settings.rate_limit_enabled, refused=metrics.rate_limited
        ),
        clients=clients,
        fingerprints=Fingerprints(
            settings.fingerprint_mode,
            clients,
            metrics.fingerprint_mismatches,
            ipv4_prefix=settings.fingerprint_ipv4_prefix,
            ipv6_prefix=settings.fingerprint_ipv6_prefix,
        ),
    )
    return Gateway(create_app(context, health), service, context)


def create_app(context: GatewayContext, health: Health) -> FastAPI:
    settings = context.settings
    app = FastAPI(title="SupportDesk gateway", version="0.1.0")
    app.state.context = context
    # Bodies are counted as they arrive and refused past the limit (413),
    # before a handler or its authentication sees them: an anonymous client
    # cannot make the gateway hold more than this per request. Set per router,
    # not on the app: the app-wide limit answers a too-long Content-Length
    # itself, outside the middleware that adds the request id.
    anywhere = problems(429, 500, 503)  # the middleware's, the catch-all's, an outage's
    for module in (meta, sessions, messages, handoff):
        app.include_router(module.router, max_body_size=settings.max_body_bytes, responses=anywhere)
    for module in (documents, attachments):
        app.include_router(
            module.router, max_body_size=settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES, responses=anywhere
        )
    # Outermost last: every response, a 429 or a 413 included, carries its request id.
    app.add_middleware(RequestRateLimit, limiter=context.limiter, limit=settings.request_limit, clients=context.clients)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", HEADER],
            expose_headers=[HEADER, "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"],
            max_age=600,
        )
    app.add_middleware(JsonTooLarge)
    app.add_middleware(ws.ChatSocketRoute, context=context)  # /ws: past this, no layer holds its sockets
    app.add_middleware(RequestId)
    if tracing_enabled():
        # An HTTP call's server span roots its trace (a REST or SSE turn, an
        # upload). Not the chat socket: it lives as long as the chat, and each
        # of its messages roots a trace of its own (api/ws.py). A client's own
        # traceparent is not believed: anyone could force every request to be
        # recorded, whatever the sampler says, or graft our spans onto their
        # trace. (Kafka headers are read by FastStream's own propagator.)
        untrusted_edge()
        FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_PATHS, exclude_spans=["receive", "send"])

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # One shape for every failure nobody foresaw: JSON with the request
        # id to quote, never a stack trace; the trace goes to the log.
        request_id = request_id_of(request.scope) or "unknown"
        log.error("unexpected error", exc_info=exc, extra={"path": request.url.path, "request_id": request_id})
        return JSONResponse(
            {"detail": "internal error; quote the request id when reporting it", "request_id": request_id},
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
            headers={HEADER: request_id},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes each bad input back: a lone surrogate
        # in it cannot be encoded (a 500), and a 60 KiB message would come
        # back whole. Where and what, without the input.
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(RateLimited)
    async def rate_limited(request: Request, exc: RateLimited) -> JSONResponse:
        return JSONResponse(
            {"detail": f"{exc}: retry in {exc.decision.retry_after} s"},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers=exc.decision.headers(),
        )

    @app.exception_handler(status.HTTP_413_CONTENT_TOO_LARGE)
    async def too_large(request: Request, exc: Exception) -> JSONResponse:
        detail = getattr(exc, "detail", None)
        if detail in (None, "Content Too Large"):  # the body limit's own words: say which limit
            limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
            detail = f"the request body is larger than the {limit} bytes allowed here"
        return JSONResponse({"detail": detail}, status_code=status.HTTP_413_CONTENT_TOO_LARGE)

    @app.exception_handler(status.HTTP_405_METHOD_NOT_ALLOWED)
    async def method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's Allow names the methods of the first route on the path
        # only; a path served by several routes (GET and DELETE) lists them all.
        allowed = sorted(
            {
                method
                for route in app.router.routes
                if isinstance(route, Route) and route.matches(request.scope)[0] is Match.PARTIAL
                for method in route.methods or ()
            }
        )
        return JSONResponse(
            {"detail": f"{request.method} is not allowed here; use {', '.join(allowed)}"},
            status_code=status.HTTP_405_METHOD_NOT_ALLOWED,
            headers={"Allow": ", ".join(allowed)},
        )

    # With an ops port of its own, metrics and diagnostics leave the public port.
    app.include_router(ops_router(health, internals=context.settings.gateway_ops_port is None))

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

    def openapi() -> dict[str, Any]:
        """OpenAPI does not describe WebSockets; the frames of /ws are added
        as schemas (ClientFrame, ServerFrame) so clients can be generated."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes, description=ws.PROTOCOL)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, frame_schema in frame_schemas().items():
                assert isinstance(frame_schema, dict)
                components.update(frame_schema.pop("$defs", {}))
                components[name] = frame_schema
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
