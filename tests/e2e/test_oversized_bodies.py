"""Fifty anonymous clients sending oversized bodies at once cannot grow the
gateway's memory: each body is refused after its limit (64 KiB for JSON,
before any byte for an unauthenticated upload). Measured on the real gateway
process; the bound is documented in the README."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from devstack import Stack

CLIENTS = 50
BODY_MIB = 20
# Growth of the gateway's RSS the whole burst may cause (documented in README.md).
RSS_BOUND_MIB = 64


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def body(head: bytes) -> AsyncIterator[bytes]:
    yield head
    for _ in range(BODY_MIB * 16):
        yield b"x" * 65536


async def send(client: httpx.AsyncClient, n: int, sid: str) -> int | None:
    """The status, or None when the gateway closed the connection mid-body (as it may after refusing)."""
    if n % 2:
        url, headers, head = f"/api/v1/sessions/{sid}/messages", {"Authorization": "Bearer nope"}, b'{"content":"'
    else:
        url, headers, head = "/api/v1/documents", {"Content-Type": "multipart/form-data; boundary=b"}, b"--b\r\n"
    with contextlib.suppress(httpx.TransportError):
        return (await client.post(url, content=body(head), headers=headers)).status_code
    return None


async def test_fifty_clients_with_oversized_bodies_do_not_grow_the_gateway(stack: Stack) -> None:
    pid = stack.process(f"gateway-{stack.gateway_port}").popen.pid
    base = f"http://127.0.0.1:{stack.gateway_port}"
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        sid = (await client.post("/api/v1/sessions", json={})).json()["session_id"]
        before = rss_mib(pid)
        peak = before
        burst = asyncio.gather(*(send(client, n, sid) for n in range(CLIENTS)))
        started = time.monotonic()
        while not burst.done():
            peak = max(peak, rss_mib(pid))
            await asyncio.sleep(0.02)
        statuses = await burst
        assert time.monotonic() - started < 60
        assert not [s for s in statuses if s is not None and s >= 500], statuses
        assert {s for s in statuses if s is not None} <= {401, 403, 413}, statuses
        assert peak - before < RSS_BOUND_MIB, f"RSS {before:.0f} -> peak {peak:.0f} MiB"
        # Still serving.
        assert (await client.post("/api/v1/sessions", json={})).status_code == 201
