"""A client that does not read its frames is dropped at once (close 1008),
whether the flood comes from replies (the hub) or from its own requests
(pongs, a resume), and without waiting for the client to speak."""

import asyncio
import json
from typing import Any

import pytest

from builders import InProcess
from supportdesk_contracts.frames import PongFrame
from supportdesk_gateway.api.ws import ChatSocket

QUEUE = 10


class StuckClient:
    """A WebSocket whose peer never reads (every send blocks) and says
    `messages` and then nothing more."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        self.closed: tuple[int, str] | None = None

    async def receive(self) -> dict[str, Any]:
        if self.messages:
            return {"type": "websocket.receive", "text": self.messages.pop(0)}
        await asyncio.Event().wait()  # silent from now on
        raise AssertionError("unreachable")

    async def send_text(self, data: str) -> None:
        await asyncio.Event().wait()  # its receive buffer is full

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


@pytest.mark.parametrize("gateway_overrides", [{"ws_send_queue": QUEUE}])
async def test_a_socket_dropped_as_slow_is_closed_without_waiting_for_the_client(system: InProcess) -> None:
    context = system.gateway.context
    client = StuckClient([])
    connection = context.hub.connect("s-1")
    serving = asyncio.create_task(ChatSocket(client, context, connection).serve())  # type: ignore[arg-type]
    for _ in range(QUEUE + 2):  # replies for it arrive faster than it reads
        context.hub.deliver("s-1", PongFrame())
    await asyncio.wait_for(serving, 2)
    assert client.closed == (1008, "client does not read its frames")


@pytest.mark.parametrize("gateway_overrides", [{"ws_send_queue": QUEUE}])
async def test_a_flood_of_its_own_requests_drops_the_socket_instead_of_crashing_it(system: InProcess) -> None:
    context = system.gateway.context
    client = StuckClient([json.dumps({"type": "ping"})] * (QUEUE + 5))
    connection = context.hub.connect("s-2")
    await asyncio.wait_for(ChatSocket(client, context, connection).serve(), 2)  # type: ignore[arg-type]
    assert client.closed == (1008, "client does not read its frames")


@pytest.mark.parametrize("gateway_overrides", [{"ws_send_timeout_seconds": 0.2}])
async def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout(system: InProcess) -> None:
    """One frame, far below the queue's bound: the send alone never ends, so
    the socket would be held open for good without the timeout."""
    context = system.gateway.context
    client = StuckClient([])
    connection = context.hub.connect("s-3")
    serving = asyncio.create_task(ChatSocket(client, context, connection).serve())  # type: ignore[arg-type]
    context.hub.deliver("s-3", PongFrame())
    await asyncio.wait_for(serving, 2)
    assert client.closed == (1008, "client does not read its frames")
