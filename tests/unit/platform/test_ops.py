import subprocess
import sys

import httpx
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from devstack import free_port
from supportdesk_platform.ops import Health, add_runtime_metrics, ops_app


async def test_readiness_is_503_with_the_state_of_each_dependency(redis_url: str) -> None:
    up = Redis.from_url(redis_url)
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there

    async def up_ready() -> bool:
        return bool(await up.ping())  # type: ignore[misc]

    async def down_ready() -> bool:
        return bool(await down.ping())  # type: ignore[misc]

    health = Health("test", checks={"redis": up_ready, "cache": down_ready})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ops_app(health)), base_url="http://t") as client:
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["redis"]["status"] == "up"
        assert checks["cache"]["status"] == "down"
        assert "ConnectionError" in checks["cache"]["error"]
        assert (await client.get("/health")).status_code == 200  # alive, just not ready
        assert (await client.get("/health/diagnostics")).json()["checks"]["cache"]["status"] == "down"
    await up.aclose()
    await down.aclose()


def test_the_gateway_does_not_load_torch() -> None:
    code = "import sys, supportdesk_gateway.app, supportdesk_gateway.__main__; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


async def test_a_draining_service_is_unready_at_once_whatever_its_dependencies_say() -> None:
    async def up() -> bool:
        return True

    health = Health("test", checks={"redis": up})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ops_app(health)), base_url="http://t") as client:
        assert (await client.get("/health/ready")).status_code == 200
        health.draining = True
        ready = await client.get("/health/ready")
        assert (ready.status_code, ready.json()["status"]) == (503, "draining")
        assert (await client.get("/health")).status_code == 200  # alive until it exits


async def test_the_ready_gauge_reports_the_last_readiness_answer_and_zero_while_draining() -> None:
    dependency_up = True

    async def dependency() -> bool:
        return dependency_up

    health = Health("test", checks={"redis": dependency})

    def ready() -> float | None:
        return health.registry.get_sample_value("supportdesk_ready")

    assert ready() == 0  # never answered: not known to be ready
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ops_app(health)), base_url="http://t") as client:
        assert (await client.get("/health/ready")).status_code == 200
        assert ready() == 1
        dependency_up = False
        assert ready() == 1  # a scrape asks no dependency: it reports the last answer
        assert (await client.get("/health/ready")).status_code == 503
        assert ready() == 0
        dependency_up = True
        await client.get("/health/diagnostics")  # any run of the checks counts
        assert ready() == 1
        health.draining = True
        assert ready() == 0  # at once, before any probe asks
        assert "supportdesk_ready 0.0" in (await client.get("/metrics")).text


async def test_each_service_reports_its_process_and_runtime_once() -> None:
    health = Health("test")
    add_runtime_metrics(health.registry)  # again: nothing doubles
    add_runtime_metrics(REGISTRY)  # the global registry has them already
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ops_app(health)), base_url="http://t") as client:
        lines = (await client.get("/metrics")).text.splitlines()
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "python_info"):
        assert len([line for line in lines if line.startswith(f"{name} ") or line.startswith(f"{name}{{")]) == 1
    assert any(line.startswith('python_gc_collections_total{generation="0"}') for line in lines)
