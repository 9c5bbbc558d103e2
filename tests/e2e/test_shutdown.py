"""Graceful shutdown: a gateway stopped with SIGTERM closes its sockets with
1001 "going away" (the client reconnects elsewhere and resumes)."""

import asyncio
import json
import signal
import subprocess
import sys

import httpx
import pytest
import websockets

from devstack import ROOT, Stack, free_port, http_ok, wait_for

pytestmark = pytest.mark.e2e


async def test_sigterm_closes_sockets_with_going_away(stack: Stack) -> None:
    port = free_port()
    env = {**stack.service_env(), "GATEWAY_PORT": str(port), "GATEWAY_ID": "doomed"}
    gateway = await asyncio.to_thread(
        subprocess.Popen, [sys.executable, "-m", "supportdesk_gateway"], env=env, cwd=ROOT
    )
    try:
        await asyncio.to_thread(wait_for, lambda: http_ok(f"http://127.0.0.1:{port}/health/ready"), 60, "gateway")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            session = (await client.post("/api/v1/sessions", json={})).json()
        url = f"ws://127.0.0.1:{port}/ws?session_id={session['session_id']}&token={session['token']}"
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await ws.recv())["type"] == "pong"
            gateway.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with asyncio.timeout(15):
                    await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
        # A stop on SIGTERM is the normal path: exit code 0 (uvicorn alone
        # would re-raise the signal and die of it).
        assert await asyncio.to_thread(gateway.wait, 20) == 0
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait()
