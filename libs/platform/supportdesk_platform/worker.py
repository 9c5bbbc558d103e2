"""Runs a worker: its Kafka consumers plus the small ops HTTP server, with a
graceful stop on SIGTERM/SIGINT (in-flight handlers finish, offsets commit)."""

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from faststream.kafka import KafkaBroker

from supportdesk_platform.kafka import broker_ready, ensure_topics
from supportdesk_platform.ops import Health, ops_app
from supportdesk_platform.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass
class Worker:
    """One worker process: a broker with its subscribers, health, and hooks
    run after the broker started (e.g. loading sample knowledge)."""

    name: str
    settings: ServiceSettings
    broker: KafkaBroker
    health: Health
    resources: AsyncExitStack = field(default_factory=AsyncExitStack)
    after_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    started: bool = False

    def __post_init__(self) -> None:
        self.health.checks.setdefault("kafka", lambda: broker_ready(self.broker))

        async def started() -> bool:
            return self.started

        # Not ready until start-up work (topics, sample knowledge) is done.
        self.health.checks["started"] = started

    async def start(self) -> None:
        await ensure_topics(self.settings)
        await self.broker.start()
        for hook in self.after_start:
            await hook()
        self.started = True

    async def stop(self) -> None:
        await self.broker.stop()
        await self.resources.aclose()


async def serve(worker: Worker, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT. uvicorn owns the signal handling; when its
    server returns, the broker stops, which waits for in-flight handlers."""
    server = uvicorn.Server(
        uvicorn.Config(ops_app(worker.health), host=host, port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    try:
        await worker.start()
        log.info("worker started", extra={"worker": worker.name, "ops_port": port})
        await serving
    finally:
        server.should_exit = True
        await worker.stop()
        if not serving.done():
            await serving
        log.info("worker stopped", extra={"worker": worker.name})


def run_until_stopped(main: Coroutine[Any, Any, None]) -> None:
    """asyncio.run, quiet on Ctrl-C: uvicorn re-raises SIGINT once its
    graceful shutdown is done, which is not an error worth a traceback."""
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        sys.exit(130)
