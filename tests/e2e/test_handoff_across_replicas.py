"""The handoff on the running system, across two gateways: a user on one
replica asks for a human; an operator watching the live feed on the other
sees it, claims the session and replies; the user's socket gets the human's
reply; while the human has the session the bot stays silent; after the hand
back the bot answers again."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from devstack import Stack
from stacks import ADMIN_KEY
from supportdesk_session.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from webhook_receiver import REFUSALS, SECRET, Delivery, Receiver

pytestmark = pytest.mark.e2e
OPERATOR = {"Authorization": f"Bearer {ADMIN_KEY}"}


def base(stack: Stack, replica: int) -> str:
    return f"http://127.0.0.1:{stack.gateway_port + replica}"


async def next_frame(ws: ClientConnection, kind: str, timeout: float = 30, **match: Any) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame


async def feed_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    event = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event:
            yield event, json.loads(line[6:])


async def deliveries(webhook: Receiver, session_id: str, count: int) -> list[Delivery]:
    async with asyncio.timeout(30):
        while len(got := webhook.of(session_id)) < count:
            await asyncio.sleep(0.1)
    return got


async def test_a_human_takes_over_across_replicas_and_hands_back(stack: Stack, webhook: Receiver) -> None:
    async with (
        httpx.AsyncClient(base_url=base(stack, 0), timeout=60) as user_http,
        httpx.AsyncClient(base_url=base(stack, 1), timeout=60) as operator_http,
    ):
        session = (await user_http.post("/api/v1/sessions", json={})).json()
        sid, auth = session["session_id"], {"Authorization": f"Bearer {session['token']}"}
        url = f"ws://127.0.0.1:{stack.gateway_port}/ws?session_id={sid}&token={session['token']}"
        async with (
            operator_http.stream("GET", "/api/v1/escalations/stream", headers=OPERATOR) as feed,
            websockets.connect(url) as ws,
        ):
            assert feed.status_code == 200
            events = feed_events(feed)
            assert (await anext(events))[0] == "ready"

            await ws.send(json.dumps({"type": "message", "content": "I want to talk to a human"}))
            await next_frame(ws, "escalated")
            async with asyncio.timeout(30):
                kind, update = await anext(events)
            assert (kind, update["session_id"]) == ("escalated", sid)

            # The bot stays silent; the operator sees the user's message live.
            await ws.send(json.dumps({"type": "message", "content": "Is anyone there?", "message_id": "m-wait"}))
            ack = await next_frame(ws, "ack", message_id="m-wait")
            assert ack["handoff"] == "awaiting_human"
            async with asyncio.timeout(30):
                kind, update = await anext(events)
            assert (kind, update["frame"]["message_id"]) == ("ack", "m-wait")
            queue = (await operator_http.get("/api/v1/escalations", headers=OPERATOR)).json()
            [queued] = [e for e in queue if e["session_id"] == sid]  # the shared stack may hold others
            assert queued["summary"] == "Is anyone there?"

            # The team's webhook: refused twice, taken the third time, each
            # attempt signed; the outcome shows in the queue.
            attempts = await deliveries(webhook, sid, REFUSALS + 1)
            assert [d.answered for d in attempts] == [503, 503, 200]
            for delivery in attempts:
                stamp = delivery.headers[TIMESTAMP_HEADER]
                assert delivery.headers[SIGNATURE_HEADER] == signature(SECRET, stamp, delivery.body)
                assert delivery.event["reason"]
            async with asyncio.timeout(30):
                while queued["webhook"] is None:
                    await asyncio.sleep(0.1)
                    queue = (await operator_http.get("/api/v1/escalations", headers=OPERATOR)).json()
                    [queued] = [e for e in queue if e["session_id"] == sid]
            assert queued["webhook"] == "delivered after 3 attempts"

            claim = await operator_http.post(f"/api/v1/sessions/{sid}/claim", headers=OPERATOR)
            assert claim.status_code == 200, claim.text
            joined = await next_frame(ws, "status")
            assert (joined["status"], joined["operator"]) == ("with_human", "admin")
            sent = await operator_http.post(
                f"/api/v1/sessions/{sid}/agent-messages", json={"content": "Hello, I'm here."}, headers=OPERATOR
            )
            assert sent.status_code == 200, sent.text
            human = await next_frame(ws, "reply", role="agent")
            assert human["content"] == "Hello, I'm here."

            handed = await operator_http.post(f"/api/v1/sessions/{sid}/handback", headers=OPERATOR)
            assert handed.status_code == 200, handed.text
            assert (await next_frame(ws, "status"))["status"] == "bot"
            await ws.send(json.dumps({"type": "message", "content": "How long does shipping take?"}))
            bot = await next_frame(ws, "reply", role="assistant")
            assert bot["content"]

        # Every frame of the conversation, in order, for a client that resumes.
        history = (await user_http.get(f"/api/v1/sessions/{sid}/messages", headers=auth)).json()
        roles = [m["role"] for m in history]
        assert roles == ["user", "assistant", "user", "agent", "user", "assistant"]
