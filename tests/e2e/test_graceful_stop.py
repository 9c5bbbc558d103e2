"""Every service stopped with a real SIGTERM in the middle of a turn: the turn's
reply reaches the client exactly once, and the service exits 0 after draining.

The LLM here streams one word every quarter second, so a turn stays in flight
for a few seconds while a service is stopped."""

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from devstack import Stack, free_port, http_ok, stop_process, wait_for
from stacks import StackFactory

pytestmark = pytest.mark.e2e
SLOW_LLM = Path(__file__).with_name("slow_llm.py")
QUESTION = "How long does standard shipping take?"


@pytest.fixture(scope="module")
def slow_llm() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(SLOW_LLM), str(port), "0.25"])
    try:
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/v1/models"), 30, "the slow LLM")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def stack(
    redis_url: str, slow_llm: str, tmp_path_factory: pytest.TempPathFactory, make_stack: StackFactory
) -> Iterator[Stack]:
    stack = make_stack(
        redis_url,
        tmp_path_factory.mktemp("graceful"),
        replicas=2,
        OPENAI_BASE_URL=slow_llm,
        LLM_MODEL="slow",
        SHUTDOWN_DRAIN_SECONDS="20",
    )
    stack.start()
    yield stack
    stack.stop()


def base(stack: Stack, replica: int) -> str:
    return f"http://127.0.0.1:{stack.gateway_port + replica}"


async def new_session(stack: Stack, replica: int = 0) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base(stack, replica)) as client:
        response = await client.post("/api/v1/sessions", json={})
        assert response.status_code == 201
        session: dict[str, Any] = response.json()
        return session


def ws_url(stack: Stack, session: dict[str, Any], replica: int) -> str:
    port = stack.gateway_port + replica
    return f"ws://127.0.0.1:{port}/ws?session_id={session['session_id']}&token={session['token']}"


@pytest.fixture
async def connected(stack: Stack) -> AsyncIterator[tuple[dict[str, Any], ClientConnection]]:
    session = await new_session(stack)
    async with websockets.connect(ws_url(stack, session, 0)) as ws:
        yield session, ws


async def receive_until(ws: ClientConnection, seen: list[dict[str, Any]], kind: str, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            seen.append(frame)
            if frame["type"] == kind:
                return


def replies_to(frames: list[dict[str, Any]], message_id: str) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] == "reply" and f["reply_to"] == message_id]


async def start_turn(ws: ClientConnection, message_id: str) -> list[dict[str, Any]]:
    """Sends a question and returns once its answer is streaming."""
    frames: list[dict[str, Any]] = []
    await ws.send(json.dumps({"type": "message", "content": QUESTION, "message_id": message_id}))
    await receive_until(ws, frames, "ack")
    await receive_until(ws, frames, "delta")
    return frames


async def stopped(stack: Stack, name: str) -> int:
    process = stack.process(name).popen
    process.send_signal(signal.SIGTERM)
    return await asyncio.to_thread(process.wait, 60)


async def test_the_agent_finishes_its_turn_before_it_exits(
    stack: Stack, connected: tuple[dict[str, Any], ClientConnection]
) -> None:
    _, ws = connected
    frames = await start_turn(ws, "agent-stop")
    exit_code = asyncio.create_task(stopped(stack, "agent+ingest"))
    await receive_until(ws, frames, "reply")
    assert await exit_code == 0
    [reply] = replies_to(frames, "agent-stop")
    assert reply["content"].startswith("Standard shipping takes three to five business days")
    await asyncio.to_thread(stack.restart, "agent+ingest")
    await ws.send(json.dumps({"type": "resume", "after_seq": 0}))
    await ws.send(json.dumps({"type": "ping"}))
    await receive_until(ws, frames, "pong")
    assert len(replies_to(frames, "agent-stop")) == 1, "a resume must not repeat a reply the socket has"


async def test_a_stopped_session_worker_loses_and_doubles_nothing(
    stack: Stack, connected: tuple[dict[str, Any], ClientConnection]
) -> None:
    _, ws = connected
    frames = await start_turn(ws, "session-stop")
    assert await stopped(stack, "session") == 0
    # The completed reply waits on the broker; a new session worker takes
    # over the group (the old one left it) and records it once.
    await asyncio.to_thread(stack.restart, "session")
    await receive_until(ws, frames, "reply", timeout=60)
    await ws.send(json.dumps({"type": "ping"}))
    await receive_until(ws, frames, "pong")
    assert len(replies_to(frames, "session-stop")) == 1


async def test_a_stopped_gateway_finishes_rest_calls_and_sends_sockets_elsewhere(stack: Stack) -> None:
    session, rest_session = await new_session(stack), await new_session(stack)
    async with (
        websockets.connect(ws_url(stack, session, 0)) as ws,
        httpx.AsyncClient(base_url=base(stack, 0), timeout=60) as client,
    ):
        frames = await start_turn(ws, "gateway-stop")
        rest = asyncio.create_task(
            client.post(
                f"/api/v1/sessions/{rest_session['session_id']}/messages",
                json={"content": QUESTION, "message_id": "rest-during-stop"},
                headers={"Authorization": f"Bearer {rest_session['token']}"},
            )
        )
        await asyncio.sleep(0.5)  # the REST turn is in flight
        exit_code = asyncio.create_task(stopped(stack, f"gateway-{stack.gateway_port}"))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await receive_until(ws, frames, "reply")
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
        response = await rest
        assert response.status_code == 200, response.text
        assert response.json()["reply"]["content"].startswith("Standard shipping")
        assert await exit_code == 0
    seen = max(f["seq"] for f in frames if "seq" in f)
    async with websockets.connect(ws_url(stack, session, 1)) as elsewhere:
        await elsewhere.send(json.dumps({"type": "resume", "after_seq": seen}))
        if not replies_to(frames, "gateway-stop"):
            await receive_until(elsewhere, frames, "reply", timeout=30)
        await elsewhere.send(json.dumps({"type": "ping"}))
        await receive_until(elsewhere, frames, "pong")
    assert len(replies_to(frames, "gateway-stop")) == 1
    await asyncio.to_thread(stack.restart, f"gateway-{stack.gateway_port}")
