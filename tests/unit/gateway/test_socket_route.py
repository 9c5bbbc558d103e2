"""/ws is served ahead of the app's middleware and routing (api/ws.py,
ChatSocketRoute): the close codes of the contract, a served socket, and its
request id (for its logs), driven over ASGI as uvicorn would."""

import asyncio
import json
from typing import Any

from builders import InProcess
from supportdesk_gateway.requests import request_id_of

Message = dict[str, Any]


class Peer:
    """The client side of one ASGI WebSocket: what it says, and what the app sent it."""

    def __init__(self, path: str, query: str) -> None:
        self.scope: Message = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "scheme": "ws",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(b"host", b"testserver"), (b"user-agent", b"test-peer")],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "subprotocols": [],
            "state": {},
            "extensions": {},
        }
        self.said: asyncio.Queue[Message] = asyncio.Queue()
        self.heard: asyncio.Queue[Message] = asyncio.Queue()
        self.said.put_nowait({"type": "websocket.connect"})

    async def receive(self) -> Message:
        return await self.said.get()

    async def send(self, message: Message) -> None:
        await self.heard.put(message)

    async def next(self) -> Message:
        return await asyncio.wait_for(self.heard.get(), 5)


async def served(system: InProcess, query: str, path: str = "/ws") -> tuple[Peer, "asyncio.Task[None]"]:
    peer = Peer(path, query)
    app = asyncio.create_task(system.gateway.app(peer.scope, peer.receive, peer.send))
    return peer, app


async def closed_with(system: InProcess, query: str) -> int:
    peer, app = await served(system, query)
    assert (await peer.next())["type"] == "websocket.accept"  # accepted first: the browser sees the code
    close = await peer.next()
    assert close["type"] == "websocket.close"
    await asyncio.wait_for(app, 5)
    return int(close["code"])


async def new_session(system: InProcess) -> dict[str, str]:
    created: dict[str, str] = (await system.http.post("/api/v1/sessions", json={})).json()
    return created


async def test_the_contract_close_codes(system: InProcess) -> None:
    session = await new_session(system)
    assert await closed_with(system, "session_id=undefined&token=t") == 4001
    assert await closed_with(system, "token=t") == 4001
    assert await closed_with(system, "session_id=0b7e5a4e-5e4f-4a8e-9d6c-1c2b3a4d5e6f&token=t") == 4004
    assert await closed_with(system, f"session_id={session['session_id']}&token=wrong") == 4003


async def test_a_served_socket_answers_and_has_a_request_id(system: InProcess) -> None:
    session = await new_session(system)
    peer, app = await served(system, f"session_id={session['session_id']}&token={session['token']}")
    accept = await peer.next()
    assert accept["type"] == "websocket.accept"
    assert request_id_of(peer.scope)  # RequestId still runs before it
    await peer.said.put({"type": "websocket.receive", "text": json.dumps({"type": "ping"})})
    assert json.loads((await peer.next())["text"]) == {"type": "pong"}
    assert system.gateway.context.hub.sockets_of(session["session_id"]) == 1
    await peer.said.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(app, 5)
    assert system.gateway.context.hub.sockets_of(session["session_id"]) == 0


async def test_other_socket_paths_still_reach_the_router(system: InProcess) -> None:
    peer, app = await served(system, "", path="/ws/")
    assert (await peer.next())["type"] == "websocket.close"  # no such route
    await asyncio.wait_for(app, 5)
