"""One lifecycle for every service, the gateway and the workers alike.

    start   provision topics, connect the broker (consumers join their groups),
            run start-up work (e.g. sample knowledge), then report ready;
    serve   the HTTP app: the gateway's API, or a worker's ops endpoints;
    stop    on SIGTERM or SIGINT: report unready at once, run drain hooks (the
            gateway closes its sockets with 1001), stop taking HTTP requests and
            let in-flight ones finish, stop the broker (subscribers finish their
            in-flight handlers within the drain time, commit their offsets and
            leave their groups), close clients, return (exit code 0).

Kubernetes sends SIGTERM on every rollout, so this is the common path, not
the exceptional one. The signals are ours, not uvicorn's: uvicorn re-raises a
captured signal when its server returns, which would kill the process before
the broker drains.
"""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Generator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import uvicorn
from faststream.kafka import KafkaBroker, KafkaRouter
from starlette.types import ASGIApp

from supportdesk_platform.kafka import KafkaTopicProvisioner, TopicProvisioner, broker_ready, build_broker
from supportdesk_platform.lag import ConsumerLag, broker_consumers
from supportdesk_platform.ops import Check, Health, ops_app
from supportdesk_platform.periodic import Periodic
from supportdesk_platform.settings import ServiceSettings, WorkerSettings
from supportdesk_platform.telemetry import shutdown_tracing

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]
READINESS_REFRESH_SECONDS = 10.0


class Phase(StrEnum):
    CREATED = "created"
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    STOPPED = "stopped"


class IllegalTransition(RuntimeError):
    """A lifecycle step was asked for in a phase that does not allow it."""

    def __init__(self, step: str, phase: Phase) -> None:
        super().__init__(f"cannot {step} a service that is {phase}")
        self.step = step
        self.phase = phase


@dataclass
class Component:
    """What one service contributes to a process: its subscribers (a router),
    its health checks, its start-up and drain work, and clients to close.
    A process usually runs one; the colocated agent+ingest runs two."""

    name: str
    router: KafkaRouter | None = None
    checks: dict[str, Check] = field(default_factory=dict)
    details: dict[str, Callable[[], Any]] = field(default_factory=dict)
    on_start: list[Hook] = field(default_factory=list)
    on_drain: list[Hook] = field(default_factory=list)
    closers: list[Hook] = field(default_factory=list)


class Service:
    """One process's lifecycle around a broker and its components."""

    def __init__(
        self,
        name: str,
        settings: ServiceSettings,
        health: Health,
        components: Sequence[Component],
        *,
        broker: KafkaBroker | None = None,
        provisioner: TopicProvisioner | None = None,
        client_id: str | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.health = health
        self.components = list(components)
        self.broker = broker or build_broker(settings, client_id or f"supportdesk-{name}", health.registry)
        self.provisioner = provisioner or KafkaTopicProvisioner(settings)
        # Asks the broker for its subscribers on each pass: their consumers
        # exist only once the broker has started.
        self.lag = ConsumerLag(health.registry, lambda: broker_consumers(self.broker))
        # supportdesk_ready follows the dependencies even where nothing probes
        # the service (a local run, a probe-less deployment).
        self.readiness = Periodic("readiness", READINESS_REFRESH_SECONDS, health.run_checks, ())
        self.phase = Phase.CREATED
        self._closers = AsyncExitStack()
        health.checks["kafka"] = lambda: broker_ready(self.broker)
        for component in self.components:
            if component.router is not None:
                self.broker.include_router(component.router)
            health.checks.update(component.checks)
            health.details.update(component.details)
            for closer in component.closers:
                self._closers.push_async_callback(closer)

        async def serving() -> bool:
            # Unready while starting (topics, sample knowledge) and from the
            # moment a stop begins, so no new traffic is routed here.
            return self.phase is Phase.READY

        health.checks["lifecycle"] = serving
        health.details["phase"] = lambda: self.phase.value

    async def start(self) -> None:
        if self.phase is not Phase.CREATED:
            raise IllegalTransition("start", self.phase)
        self.phase = Phase.STARTING
        await self.provisioner.ensure(self.settings.topics.all())
        await self.broker.start()
        await self.lag.start()
        for component in self.components:
            for hook in component.on_start:
                await hook()
        self.phase = Phase.READY
        await self.health.run_checks()
        await self.readiness.start()
        log.info("service ready", extra={"service": self.name})

    async def drain(self) -> None:
        """Stop advertising readiness and run the drain hooks; the broker keeps
        running, so in-flight work (a REST call waiting for its reply) ends."""
        if self.phase in (Phase.DRAINING, Phase.STOPPED):
            return
        self.phase = Phase.DRAINING
        self.health.draining = True
        # Before the broker stops its consumers, which a pass could be reading.
        await self.lag.stop()
        await self.readiness.stop()
        log.info("service draining", extra={"service": self.name})
        for component in self.components:
            for hook in component.on_drain:
                await hook()

    async def stop(self) -> None:
        """Drain, stop the broker (in-flight handlers finish within the drain
        time, offsets are committed, consumers leave their groups), close clients."""
        if self.phase is Phase.STOPPED:
            return
        await self.drain()
        try:
            await self.broker.stop()
        finally:
            await self._closers.aclose()
            self.phase = Phase.STOPPED
            log.info("service stopped", extra={"service": self.name})


class _HttpServer(uvicorn.Server):
    """uvicorn without its signal handling: the lifecycle owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass(frozen=True)
class Listener:
    """One HTTP app on one address: the API, or the ops endpoints.

    An API stops taking requests before the service stops (its in-flight
    requests wait on replies the broker still delivers); ops endpoints
    (`probes=True`) stay up until the service has stopped, so readiness says
    503 "draining" for the whole drain, as an orchestrator expects to see.
    """

    app: ASGIApp
    host: str
    port: int
    options: dict[str, Any] = field(default_factory=dict)
    probes: bool = False

    def server(self, drain_seconds: float) -> _HttpServer:
        return _HttpServer(
            uvicorn.Config(
                self.app,
                host=self.host,
                port=self.port,
                lifespan="off",
                # Our logging setup, uvicorn's levels: warnings and errors only
                # (one access line per probe is noise).
                log_config=None,
                log_level="warning",
                timeout_graceful_shutdown=int(drain_seconds),
                **self.options,
            )
        )


async def serve(
    service: Service | Awaitable[Service], listeners: Sequence[Listener], settings: ServiceSettings
) -> None:
    """Serve `listeners` and run the service until SIGTERM or SIGINT, then
    stop it gracefully (see the module's docstring). Returns normally: exit
    code 0.

    `service` may still be in the making (a worker loading its embedding
    model): the HTTP side starts first, so liveness and start-up probes get
    answers while it loads, provisions topics and joins its groups.
    """
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    drain_seconds = settings.shutdown_drain_seconds
    servers = [listener.server(drain_seconds) for listener in listeners]
    serving = [asyncio.create_task(server.serve(), name=f"http:{server.config.port}") for server in servers]
    signalled = asyncio.create_task(stopping.wait(), name="signal")
    starting = asyncio.create_task(_build_and_start(service), name="start")
    running: Service | None = None
    try:
        done, _ = await asyncio.wait({starting, signalled, *serving}, return_when=asyncio.FIRST_COMPLETED)
        if starting in done:
            running = starting.result()  # a failed start is an error exit, not a quiet one
            await asyncio.wait({signalled, *serving}, return_when=asyncio.FIRST_COMPLETED)
        log.info("stopping", extra={"signal": stopping.is_set()})
    finally:
        for task in (starting, signalled):
            task.cancel()
        if running is None and isinstance(service, Service):
            running = service
        if running is not None:
            await running.drain()
        # APIs stop accepting connections and wait for in-flight requests
        # (at most the drain time) while the broker still delivers replies;
        # then the service stops; the probes go last.
        first = [i for i, listener in enumerate(listeners) if not listener.probes]
        last = [i for i, listener in enumerate(listeners) if listener.probes]
        for group in (first, last):
            for i in group:
                servers[i].should_exit = True
            await asyncio.gather(*(serving[i] for i in group))
            if group is first and running is not None:
                await running.stop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        # Off the loop: the exporter's last flush blocks on the network.
        await asyncio.to_thread(shutdown_tracing)


async def _build_and_start(service: Service | Awaitable[Service]) -> Service:
    built = service if isinstance(service, Service) else await service
    await built.start()
    return built


def loading(health: Health) -> None:
    """Readiness of a service still being built: /health answers, /health/ready
    says 503 "loading" until the Service takes over the checks."""

    async def not_yet() -> bool:
        return False

    health.checks["lifecycle"] = not_yet
    health.details["phase"] = lambda: "loading"


async def serve_worker(settings: WorkerSettings, health: Health, build: Awaitable[Service]) -> None:
    """A worker's process: its ops endpoints at once, then its service (built
    by `build`, which reports to `health`) behind them."""
    loading(health)
    await serve(build, [Listener(ops_app(health), settings.ops_host, settings.ops_port, probes=True)], settings)
