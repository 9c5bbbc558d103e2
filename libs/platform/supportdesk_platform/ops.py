"""Operations endpoints every service serves: liveness, readiness with each
dependency's state, diagnostics, and Prometheus metrics."""

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from redis.asyncio import Redis

Check = Callable[[], Awaitable[bool]]

CHECK_TIMEOUT_SECONDS = 2.0

# Registries that already report the process and the runtime. A registry
# would take these collectors twice without a word (they do not describe
# their names), so which have them is remembered here; the global one is
# born with them.
_WITH_RUNTIME: "weakref.WeakSet[CollectorRegistry]" = weakref.WeakSet([REGISTRY])


def add_runtime_metrics(registry: CollectorRegistry) -> None:
    """Memory, CPU time and open files of the process, the interpreter's
    version and its garbage collections, in `registry` (once)."""
    if registry in _WITH_RUNTIME:
        return
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    _WITH_RUNTIME.add(registry)


def redis_check(redis: Redis) -> Check:
    async def ping() -> bool:
        return bool(await redis.ping())  # type: ignore[misc]

    return ping


@dataclass
class Health:
    """What a service reports about itself. Checks are added at wiring time."""

    service: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    checks: dict[str, Check] = field(default_factory=dict)
    details: dict[str, Callable[[], Any]] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    # Set when a stop begins: readiness answers 503 at once, without asking
    # dependencies that may be going away themselves.
    draining: bool = False
    # The outcome of the last readiness computed: a scrape reports it rather
    # than asking every dependency again.
    last_ready: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        add_runtime_metrics(self.registry)
        ready = Gauge(
            "supportdesk_ready",
            "1 when the service's last readiness answer was ready; 0 when it was not, or the service is draining.",
            registry=self.registry,
        )
        ready.set_function(lambda: float(self.last_ready and not self.draining))

    async def run_checks(self) -> dict[str, dict[str, Any]]:
        async def one(check: Check) -> dict[str, Any]:
            began = time.perf_counter()
            try:
                ok = await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
                error = None
            # Deliberately broad: a readiness probe must report a broken
            # dependency as "down", whatever the client library raised.
            except Exception as exc:  # noqa: BLE001
                ok, error = False, f"{type(exc).__name__}: {exc}"[:300]
            state: dict[str, Any] = {
                "status": "up" if ok else "down",
                "latency_ms": round((time.perf_counter() - began) * 1000, 1),
            }
            if error:
                state["error"] = error
            return state

        names = list(self.checks)
        results = await asyncio.gather(*(one(self.checks[n]) for n in names))
        self.last_ready = all(r["status"] == "up" for r in results)
        return dict(zip(names, results, strict=True))


def ops_router(health: Health, *, internals: bool = True) -> APIRouter:
    """The probes, and with `internals` the diagnostics and metrics, which
    say more about the deployment than the public internet should see."""
    router = APIRouter(tags=["operations"])

    @router.get("/health")
    async def live() -> dict[str, str]:
        return {"status": "alive", "service": health.service}

    @router.get(
        "/health/ready",
        responses={503: {"description": "Not ready: a dependency is down, the service is loading or draining."}},
    )
    async def ready() -> JSONResponse:
        if health.draining:
            return JSONResponse({"status": "draining", "service": health.service}, status_code=503)
        checks = await health.run_checks()
        ok = all(c["status"] == "up" for c in checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "service": health.service, "checks": checks},
            status_code=200 if ok else 503,
        )

    if not internals:
        return router

    @router.get("/health/diagnostics")
    async def diagnostics() -> dict[str, Any]:
        return {
            "service": health.service,
            "uptime_seconds": round(time.time() - health.started_at, 1),
            "checks": await health.run_checks(),
            **{name: fn() for name, fn in health.details.items()},
        }

    @router.get("/metrics", response_class=PlainTextResponse, responses={200: {"description": "Prometheus text"}})
    async def metrics() -> Response:
        return Response(generate_latest(health.registry), media_type=CONTENT_TYPE_LATEST)

    return router


def ops_app(health: Health) -> FastAPI:
    """The small HTTP app a worker serves next to its consumers."""
    app = FastAPI(title=f"supportdesk-{health.service} operations", docs_url=None, redoc_url=None)
    app.include_router(ops_router(health))
    return app
