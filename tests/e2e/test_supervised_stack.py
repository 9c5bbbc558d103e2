"""`make run`'s supervision on the whole system: `kill -9` of the agent
(with ingest, its process here) and then of the session worker, each while a
user waits for an answer. The killed process is started again, nothing else
is restarted, and every message is answered once the process is back (before
supervision, `make run` stopped the whole system at the first death)."""

import asyncio
import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from devstack import Stack
from stacks import StackFactory, Supervising

pytestmark = pytest.mark.e2e

QUESTION = "How long does standard shipping take?"


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory, make_stack: StackFactory) -> Iterator[Stack]:
    stack = make_stack(redis_url, tmp_path_factory.mktemp("supervised"), replicas=1)
    stack.start()
    yield stack
    stack.stop()


def pids(stack: Stack, *but: str) -> dict[str, int]:
    return {p.name: p.popen.pid for p in stack.processes if p.name not in but}


async def test_a_killed_worker_comes_back_and_answers(stack: Stack, tmp_path: Path) -> None:
    supervising = Supervising(stack)
    base = f"http://127.0.0.1:{stack.gateway_port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=90) as http:
            created = (await http.post("/api/v1/sessions", json={})).json()
            auth = {"Authorization": f"Bearer {created['token']}"}
            path = f"/api/v1/sessions/{created['session_id']}/messages"

            others = pids(stack, "agent+ingest")
            os.kill(stack.process("agent+ingest").popen.pid, signal.SIGKILL)
            # Sent while the agent is dead: answered once it is back.
            reply = (await http.post(path, json={"content": QUESTION}, headers=auth)).json()["reply"]
            assert "3-5 business days" in reply["content"]
            assert pids(stack, "agent+ingest") == others

            others = pids(stack, "session")
            os.kill(stack.process("session").popen.pid, signal.SIGKILL)
            url = f"ws://127.0.0.1:{stack.gateway_port}/ws?session_id={created['session_id']}&token={created['token']}"
            async with websockets.connect(url) as ws:
                message_id = str(uuid.uuid4())
                await ws.send(json.dumps({"type": "message", "content": QUESTION, "message_id": message_id}))
                frames = []
                async with asyncio.timeout(90):
                    while not frames or frames[-1]["type"] != "reply":
                        frames.append(json.loads(await ws.recv()))
            assert [f["message_id"] for f in frames if f["type"] == "ack"] == [message_id]
            assert "3-5 business days" in frames[-1]["content"]
            assert pids(stack, "session") == others

            history = (await http.get(path, headers=auth)).json()
            assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
        async with asyncio.timeout(60):
            while sum("is back" in line for line in supervising.lines) < 2:
                await asyncio.sleep(0.2)
    finally:
        supervising.stop()
    lines = supervising.lines
    assert any(line.startswith("agent+ingest exited with code -9") for line in lines), lines
    assert any(line.startswith("session exited with code -9") for line in lines), lines
    assert not any("crash-looping" in line for line in lines), lines
