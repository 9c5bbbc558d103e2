"""Rate limits shared by every gateway replica: one sliding-window log per
subject (a client IP, a session) in Redis, checked and updated by one Lua
step, so N replicas together admit what one would.

Scopes: HTTP requests per client IP (`RATE_LIMIT_REQUESTS` per
`RATE_LIMIT_PERIOD`, WebSocket handshakes included), session creation per
client IP, and chat messages per session on any channel. A refusal says when
to retry: 429 with `Retry-After` and `RateLimit-*` headers over HTTP, an
`error` frame with `code: "rate_limited"` and `retry_after` on a WebSocket.
"""

import ipaddress
import logging
import math
import uuid
from dataclasses import dataclass

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# KEYS[1]: the subject's log (a sorted set of request times in ms).
# ARGV: limit, window in ms, a unique member. Returns {allowed, remaining,
# ms until the oldest entry leaves the window}. Refused requests are not
# logged, so a client that keeps trying is admitted as soon as it may be.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  count = count + 1
  allowed = 1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reset = window
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
return {allowed, limit - count, reset}
"""


@dataclass(frozen=True)
class Limit:
    name: str
    requests: int
    period_seconds: float


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_seconds))

    def headers(self) -> dict[str, str]:
        """The IETF RateLimit header fields, and Retry-After on a refusal."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(math.ceil(self.reset_seconds)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


UNLIMITED = Decision(True, 0, 0, 0)


class RateLimited(Exception):
    def __init__(self, limit: Limit, decision: Decision) -> None:
        super().__init__(f"rate limit {limit.name}: {limit.requests} per {limit.period_seconds:g} s")
        self.limit = limit
        self.decision = decision


class RateLimiter:
    """Checks subjects against limits; each refusal is counted in `refused`
    (labelled with the limit's name), whichever channel asked."""

    def __init__(self, redis: Redis, prefix: str, *, enabled: bool = True, refused: Counter | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.enabled = enabled
        self.refused = refused
        self._step = redis.register_script(_SLIDING_WINDOW)

    async def hit(self, limit: Limit, subject: str) -> Decision:
        """Counts one request of `subject` against `limit` if it is admitted."""
        if not self.enabled:
            return UNLIMITED
        key = f"{self.prefix}:rl:{limit.name}:{subject}"
        try:
            allowed, remaining, reset_ms = await self._step(
                keys=[key], args=[limit.requests, int(limit.period_seconds * 1000), uuid.uuid4().hex]
            )
        except RedisError:
            # Limits protect the service; a store outage must not take chat
            # down with it (the store's own outage shows on readiness).
            log.warning("rate limit store unavailable; admitting", exc_info=True)
            return UNLIMITED
        if not allowed and self.refused is not None:
            self.refused.labels(limit.name).inc()
        return Decision(bool(allowed), limit.requests, int(remaining), int(reset_ms) / 1000)

    async def check(self, limit: Limit, subject: str) -> Decision:
        """As `hit`, raising RateLimited on a refusal."""
        decision = await self.hit(limit, subject)
        if not decision.allowed:
            raise RateLimited(limit, decision)
        return decision


class ClientAddress:
    """The client's IP: the peer's, unless the peer is a trusted proxy; then
    the nearest address in X-Forwarded-For that is not a trusted proxy.
    Without trusted proxies the header is ignored: anyone can send it."""

    def __init__(self, trusted: list[str]) -> None:
        self.trusted = [ipaddress.ip_network(net.strip(), strict=False) for net in trusted if net.strip()]

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def of(self, scope: Scope) -> str:
        client = scope.get("client")
        peer = client[0] if client else "unknown"
        if not self._is_trusted(peer):
            return str(peer)
        forwarded = Headers(scope=scope).get("x-forwarded-for", "")
        for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
            if not self._is_trusted(hop):
                return hop
        return str(peer)


class RequestRateLimit:
    """ASGI middleware: every HTTP request under /api/ counts against its
    client IP's limit; refused with 429 before any handler runs, admitted
    ones carry the RateLimit-* headers."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter, limit: Limit, clients: ClientAddress) -> None:
        self.app = app
        self.limiter = limiter
        self.limit = limit
        self.clients = clients

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        decision = await self.limiter.hit(self.limit, self.clients.of(scope))
        if not decision.allowed:
            response = JSONResponse(
                {"detail": f"too many requests: retry in {decision.retry_after} s"},
                status_code=429,
                headers=decision.headers(),
            )
            await response(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and decision is not UNLIMITED:
                headers = MutableHeaders(scope=message)
                for name, value in decision.headers().items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)
