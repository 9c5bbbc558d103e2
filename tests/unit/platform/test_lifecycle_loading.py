"""A worker still loading (its embedding model takes seconds, longer on a
busy node) answers its probes: alive at once, not ready until it has started.
Kubernetes' startupProbe and livenessProbe rely on that; a process that
answered nothing while loading would be killed and restarted in a loop."""

import asyncio
import os
import signal

import httpx
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from devstack import free_port
from supportdesk_platform import lifecycle
from supportdesk_platform.kafka import NoProvisioning
from supportdesk_platform.lifecycle import Component, Service, serve_worker
from supportdesk_platform.ops import Health
from supportdesk_session.settings import SessionWorkerSettings


async def poll(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                return await client.get(url)
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


async def test_probes_answer_while_the_service_is_still_being_built() -> None:
    port = free_port()
    settings = SessionWorkerSettings(ops_port=port)
    health = Health("slow")
    release = asyncio.Event()

    async def build() -> Service:
        await release.wait()  # the model load that has not finished
        raise AssertionError("never reached: the process is stopped while loading")

    worker = asyncio.create_task(serve_worker(settings, health, build()))
    alive = await poll(f"http://127.0.0.1:{port}/health")
    assert alive.status_code == 200
    ready = await poll(f"http://127.0.0.1:{port}/health/ready")
    assert ready.status_code == 503
    assert ready.json()["checks"]["lifecycle"]["status"] == "down"
    diagnostics = await poll(f"http://127.0.0.1:{port}/health/diagnostics")
    assert diagnostics.json()["phase"] == "loading"

    # A rollout may stop a pod that has not finished loading: it exits cleanly.
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(worker, 10)
    assert not release.is_set()


async def test_readiness_is_kept_current_without_a_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """supportdesk_ready follows a dependency going down and coming back even
    where nothing calls /health/ready (a run without Kubernetes probes)."""
    monkeypatch.setattr(lifecycle, "READINESS_REFRESH_SECONDS", 0.05)
    health = Health("probe-less")
    up = True

    async def dependency() -> bool:
        return up

    broker = KafkaBroker()
    service = Service(
        "probe-less",
        SessionWorkerSettings(ops_port=free_port()),
        health,
        [Component("probe-less", checks={"dependency": dependency})],
        broker=broker,
        provisioner=NoProvisioning(),
    )

    def ready() -> float | None:
        return health.registry.get_sample_value("supportdesk_ready")

    async with TestKafkaBroker(broker):
        await service.start()
        assert ready() == 1.0
        up = False
        await asyncio.sleep(0.3)
        assert ready() == 0.0
        up = True
        await asyncio.sleep(0.3)
        assert ready() == 1.0
        await service.drain()
        assert ready() == 0.0
