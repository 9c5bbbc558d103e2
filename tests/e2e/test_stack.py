"""The system as users run it: broker, Redis and every service as separate
processes (started through the same code as `make run`), two gateways,
driven over HTTP, SSE and WebSocket."""

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from devstack import Stack
from sse import read_events
from stacks import IDENTITY_SECRET

pytestmark = pytest.mark.e2e

QUESTION = "How long does standard shipping take?"


def base(stack: Stack, replica: int = 0) -> str:
    return f"http://127.0.0.1:{stack.gateway_port + replica}"


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base(stack), timeout=30) as client:
        yield client


async def new_session(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/sessions", json=body)
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


def auth(session: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['token']}"}


def ws_url(stack: Stack, session_id: str, token: str, replica: int = 0) -> str:
    return f"ws://127.0.0.1:{stack.gateway_port + replica}/ws?session_id={session_id}&token={token}"


async def frames_until(ws: ClientConnection, *types: str, timeout: float = 30) -> list[dict[str, Any]]:
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            frames.append(frame)
            if frame["type"] in types:
                return frames


def duplicate_acks(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] == "ack" and f["duplicate"]]


async def until_pong(ws: ClientConnection) -> list[dict[str, Any]]:
    """Frames up to a pong: everything the server queued before the ping."""
    await ws.send(json.dumps({"type": "ping"}))
    return [f for f in await frames_until(ws, "pong") if f["type"] != "pong"]


def assert_deltas_inside_their_turn(frames: list[dict[str, Any]]) -> None:
    """A delta only ever comes between its turn's ack and its reply."""
    open_turns: set[str] = set()
    for frame in frames:
        if frame["type"] == "ack":
            open_turns.add(frame["message_id"])
        elif frame["type"] == "delta":
            assert frame["reply_to"] in open_turns, frame
        elif frame["type"] in ("reply", "error"):
            open_turns.discard(frame.get("reply_to", ""))


async def test_websocket_turn_streams_and_cites_sources(stack: Stack, http: httpx.AsyncClient) -> None:
    session = await new_session(http)
    async with websockets.connect(ws_url(stack, session["session_id"], session["token"])) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv()) == {"type": "pong"}
        await ws.send(json.dumps({"type": "message", "content": QUESTION, "message_id": "m-1"}))
        frames = await frames_until(ws, "reply")
    ack, *deltas, reply = frames
    assert (ack["type"], ack["message_id"], ack["seq"]) == ("ack", "m-1", 1)
    # Streamed: its first word at once, the rest (known at the same moment) in one delta.
    assert len(deltas) == 2
    assert deltas[0]["content"] == "According "
    assert all(d["type"] == "delta" and d["reply_to"] == "m-1" for d in deltas)
    assert "".join(d["content"] for d in deltas).strip() == reply["content"]
    assert "3-5 business days" in reply["content"]
    assert reply["sources"][0]["title"] == "Shipping information"
    # The spec's fields, and the number the answer cites the source by.
    fields = {"document_id", "title", "snippet", "score", "ref", "attachment", "url", "metadata"}
    assert set(reply["sources"][0]) == fields
    assert reply["sources"][0]["attachment"] is False
    assert (reply["sources"][0]["url"], reply["sources"][0]["metadata"]) == (None, {})  # none given for samples
    assert reply["sources"][0]["ref"] == 1
    assert reply["seq"] == 2
    assert reply["escalated"] is False


async def test_rest_and_sse_turns_and_history_in_order(http: httpx.AsyncClient) -> None:
    session = await new_session(http)
    sid = session["session_id"]
    response = await http.post(f"/api/v1/sessions/{sid}/messages", json={"content": QUESTION}, headers=auth(session))
    assert response.status_code == 200, response.text
    body = response.json()
    assert "3-5 business days" in body["reply"]["content"]
    assert body["reply"]["sources"]

    async with http.stream(
        "POST",
        f"/api/v1/sessions/{sid}/messages/stream",
        json={"content": "What is your refund policy?"},
        headers=auth(session),
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = await read_events(stream)
    kinds = [e for e, _ in events]
    assert kinds[0] == "ack"
    assert kinds[-1] == "done"
    assert kinds.count("delta") >= 2
    done = events[-1][1]
    assert "30 days" in done["reply"]["content"]
    assert "".join(d["content"] for e, d in events if e == "delta").strip() == done["reply"]["content"]

    history = (await http.get(f"/api/v1/sessions/{sid}/messages", headers=auth(session))).json()
    assert [(m["role"], m["content"][:20]) for m in history] == [
        ("user", QUESTION[:20]),
        ("assistant", body["reply"]["content"][:20]),
        ("user", "What is your refund "),
        ("assistant", done["reply"]["content"][:20]),
    ]
    assert history[1]["sources"]
    page = (await http.get(f"/api/v1/sessions/{sid}/messages?limit=1&offset=2", headers=auth(session))).json()
    assert [m["content"] for m in page] == ["What is your refund policy?"]
    info = (await http.get(f"/api/v1/sessions/{sid}", headers=auth(session))).json()
    assert (info["status"], info["message_count"], info["escalated"]) == ("active", 4, False)


async def test_nothing_relevant_means_no_invention(http: httpx.AsyncClient) -> None:
    session = await new_session(http)
    response = await http.post(
        f"/api/v1/sessions/{session['session_id']}/messages",
        json={"content": "What is the airspeed velocity of an unladen swallow?"},
        headers=auth(session),
    )
    reply = response.json()["reply"]
    assert "couldn't find" in reply["content"]
    assert reply["sources"] == []


async def test_close_codes(stack: Stack, http: httpx.AsyncClient) -> None:
    session = await new_session(http)
    cases = {
        ws_url(stack, "undefined", session["token"]): 4001,
        f"ws://127.0.0.1:{stack.gateway_port}/ws?session_id=&token=x": 4001,
        f"ws://127.0.0.1:{stack.gateway_port}/ws": 4001,
        ws_url(stack, str(uuid.uuid4()), session["token"]): 4004,
        ws_url(stack, session["session_id"], "wrong-token"): 4003,
    }
    for url, code in cases.items():
        async with websockets.connect(url) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == code, url


async def test_every_session_call_needs_that_sessions_token(http: httpx.AsyncClient) -> None:
    mine, other = await new_session(http), await new_session(http)
    sid = mine["session_id"]
    for method, path in [
        ("GET", f"/api/v1/sessions/{sid}"),
        ("GET", f"/api/v1/sessions/{sid}/messages"),
        ("POST", f"/api/v1/sessions/{sid}/messages"),
        ("DELETE", f"/api/v1/sessions/{sid}"),
    ]:
        body = {"content": "hi"} if method == "POST" else None
        assert (await http.request(method, path, json=body)).status_code == 401
        assert (await http.request(method, path, json=body, headers=auth(other))).status_code == 403
    assert (await http.get(f"/api/v1/sessions/{sid}", headers=auth(mine))).status_code == 200


async def test_bad_input_gets_clear_errors(stack: Stack, http: httpx.AsyncClient) -> None:
    session = await new_session(http)
    sid = session["session_id"]
    too_long = {"content": "x" * 5000}
    response = await http.post(f"/api/v1/sessions/{sid}/messages", json=too_long, headers=auth(session))
    assert response.status_code == 422
    assert "longer than" in response.text
    assert (
        await http.post(f"/api/v1/sessions/{sid}/messages", json={"content": "  "}, headers=auth(session))
    ).status_code == 422
    assert (
        await http.post("/api/v1/sessions", content=b"{nope", headers={"content-type": "application/json"})
    ).status_code == 422
    async with websockets.connect(ws_url(stack, sid, session["token"])) as ws:
        for raw, code in [
            ("not json", "invalid_json"),
            ('{"type": "dance"}', "invalid_frame"),
            ('{"type": "message"}', "invalid_frame"),
            ('{"type": "message", "content": "   "}', "empty_message"),
            ('{"type": "resume", "after_seq": -1}', "invalid_frame"),
        ]:
            await ws.send(raw)
            frame = json.loads(await ws.recv())
            assert (frame["type"], frame["code"]) == ("error", code), raw
        await ws.send(b"\x00binary")
        assert json.loads(await ws.recv())["code"] == "binary_not_supported"
        # The socket survived all of it.
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv())["type"] == "pong"


async def test_two_gateways_resume_and_duplicates(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=base(stack, 1), timeout=30) as gateway_b:
        session = await new_session(gateway_b)  # created on gateway B
    sid, token = session["session_id"], session["token"]
    async with websockets.connect(ws_url(stack, sid, token, replica=0)) as ws:  # chatting on gateway A
        await ws.send(json.dumps({"type": "message", "content": QUESTION, "message_id": "dup-1"}))
        first = await frames_until(ws, "reply")
    assert first[-1]["reply_to"] == "dup-1"

    # Reconnect to the other replica and send the same message id again: it is
    # acked as a duplicate and its recorded reply re-announced, not answered
    # anew. Replica B may still be behind on the outbound topic, so frames of
    # the first turn can arrive too: the socket sees a coherent, deduplicated
    # stream whatever the order.
    async with websockets.connect(ws_url(stack, sid, token, replica=1)) as ws:
        await ws.send(json.dumps({"type": "message", "content": QUESTION, "message_id": "dup-1"}))
        again: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            while not (duplicate_acks(again) and [f for f in again if f["type"] == "reply"]):
                again.append(json.loads(await ws.recv()))
        again += await until_pong(ws)
        assert [(f["seq"], f["duplicate"]) for f in duplicate_acks(again)] == [(1, True)]
        replies = [f for f in again if f["type"] == "reply"]
        assert [(r["seq"], r["content"]) for r in replies] == [(2, first[-1]["content"])]
        assert_deltas_inside_their_turn(again)

        # Resuming from the start replays the log; the reply this socket
        # already has is not sent twice.
        await ws.send(json.dumps({"type": "resume", "after_seq": 0}))
        resumed = await until_pong(ws)
        assert ("ack", 1) in [(f["type"], f.get("seq")) for f in resumed]
        assert [f for f in resumed if f["type"] == "reply"] == []

    # A fresh socket resuming gets everything it missed.
    async with websockets.connect(ws_url(stack, sid, token, replica=0)) as ws:
        await ws.send(json.dumps({"type": "resume", "after_seq": 0}))
        replayed = await until_pong(ws)
        assert {(f["type"], f["seq"]) for f in replayed if f["type"] in ("ack", "reply")} == {("ack", 1), ("reply", 2)}

    async with httpx.AsyncClient(base_url=base(stack, 1), timeout=30) as gateway_b:
        history = (await gateway_b.get(f"/api/v1/sessions/{sid}/messages", headers=auth(session))).json()
    assert [m["role"] for m in history] == ["user", "assistant"]


async def test_session_recovery_and_deletion(http: httpx.AsyncClient) -> None:
    user = f"user-{uuid.uuid4().hex[:6]}"
    proof = hmac.new(IDENTITY_SECRET.encode(), user.encode(), hashlib.sha256).hexdigest()
    first = await new_session(http, user_id=user, user_hash=proof)
    again = await new_session(http, user_id=user, user_hash=proof)
    assert again["session_id"] == first["session_id"]
    assert (again["recovered"], again["verified"]) == (True, True)
    fresh = await new_session(http, user_id=user, user_hash=proof, is_new_chat=True)
    assert fresh["session_id"] != first["session_id"]
    anyone = await new_session(http, user_id=user)  # no proof: the id is ignored
    assert anyone["session_id"] not in (first["session_id"], fresh["session_id"])
    assert (anyone["recovered"], anyone["verified"]) == (False, False)

    sid = fresh["session_id"]
    assert (await http.delete(f"/api/v1/sessions/{sid}", headers=auth(fresh))).status_code == 204
    assert (await http.get(f"/api/v1/sessions/{sid}", headers=auth(fresh))).status_code == 404


async def test_uploaded_document_is_indexed_and_answered_from(http: httpx.AsyncClient) -> None:
    admin = {"Authorization": "Bearer e2e-admin"}
    text = b"Gift cards: Gift cards never expire and can be used on any order, online or in store."
    files = {"file": ("gift-cards.txt", text, "text/plain")}
    assert (await http.post("/api/v1/documents", files=files)).status_code == 401
    assert (
        await http.post("/api/v1/documents", files=files, headers={"Authorization": "Bearer nope"})
    ).status_code == 403
    bad = {"file": ("virus.exe", b"MZ", "application/octet-stream")}
    assert (await http.post("/api/v1/documents", files=bad, headers=admin)).status_code == 415

    response = await http.post("/api/v1/documents", files=files, headers=admin)
    assert response.status_code == 202
    document_id = response.json()["document_id"]
    assert response.json()["status"] == "queued"
    async with asyncio.timeout(60):
        while (record := (await http.get(f"/api/v1/documents/{document_id}", headers=admin)).json())[
            "status"
        ] != "indexed":
            assert record["status"] != "failed", record
            await asyncio.sleep(0.2)
    assert record["chunks"] == 1
    again = await http.post("/api/v1/documents", files=files, headers=admin)
    assert again.json()["document_id"] == document_id  # same content replaces, never duplicates

    session = await new_session(http)
    reply = (
        await http.post(
            f"/api/v1/sessions/{session['session_id']}/messages",
            json={"content": "Do gift cards expire?"},
            headers=auth(session),
        )
    ).json()["reply"]
    assert "never expire" in reply["content"]
    assert reply["sources"][0]["document_id"] == document_id

    broken = {"file": ("broken.pdf", b"%PDF-1.4 garbage", "application/pdf")}
    failed_id = (await http.post("/api/v1/documents", files=broken, headers=admin)).json()["document_id"]
    async with asyncio.timeout(60):
        while (record := (await http.get(f"/api/v1/documents/{failed_id}", headers=admin)).json())[
            "status"
        ] != "failed":
            await asyncio.sleep(0.2)
    assert "cannot read .pdf" in record["error"]

    assert (await http.delete(f"/api/v1/documents/{document_id}", headers=admin)).status_code == 204
    async with asyncio.timeout(30):
        while (await http.get(f"/api/v1/documents/{document_id}", headers=admin)).status_code != 404:
            await asyncio.sleep(0.2)
    # Its chunks left the index: the same question no longer cites it.
    after = (
        await http.post(
            f"/api/v1/sessions/{session['session_id']}/messages",
            json={"content": "Do gift cards expire?"},
            headers=auth(session),
        )
    ).json()["reply"]
    assert document_id not in [s["document_id"] for s in after["sources"]]
    assert "never expire" not in after["content"]


async def test_an_attachment_answers_its_own_session_only(http: httpx.AsyncClient) -> None:
    """A user attaches a file to their conversation: their questions are
    answered from it, with it as the source; another session never sees it,
    and the knowledge base never holds it."""
    admin = {"Authorization": "Bearer e2e-admin"}
    documents_before = (await http.get("/api/v1/documents", headers=admin)).json()
    owner, other = await new_session(http), await new_session(http)
    text = (
        b"# Order 7731 packing slip\n\n"
        b"The parcel for order 7731 was packed with a teal kayak paddle and two dry bags.\n"
    )
    files = {"file": ("packing-slip.md", text, "text/markdown")}
    path = f"/api/v1/sessions/{owner['session_id']}/attachments"
    assert (await http.post(path, files=files)).status_code == 401
    assert (await http.post(path, files=files, headers=auth(other))).status_code == 403
    bad = {"file": ("slip.exe", b"MZ", "application/octet-stream")}
    assert (await http.post(path, files=bad, headers=auth(owner))).status_code == 415

    response = await http.post(path, files=files, headers=auth(owner))
    assert response.status_code == 202, response.text
    attachment = response.json()
    assert attachment["status"] == "queued"
    async with asyncio.timeout(60):
        while (record := (await http.get(f"{path}/{attachment['attachment_id']}", headers=auth(owner))).json())[
            "status"
        ] != "ready":
            assert record["status"] != "failed", record
            await asyncio.sleep(0.2)
    assert record["passages"] >= 1
    assert [a["attachment_id"] for a in (await http.get(path, headers=auth(owner))).json()] == [
        attachment["attachment_id"]
    ]

    question = {"content": "What was packed for order 7731?"}
    reply = (
        await http.post(f"/api/v1/sessions/{owner['session_id']}/messages", json=question, headers=auth(owner))
    ).json()["reply"]
    assert "teal kayak paddle" in reply["content"]
    assert reply["sources"][0]["document_id"] == attachment["attachment_id"]
    assert reply["sources"][0]["attachment"] is True
    assert reply["sources"][0]["title"] == "packing-slip.md"

    elsewhere = (
        await http.post(f"/api/v1/sessions/{other['session_id']}/messages", json=question, headers=auth(other))
    ).json()["reply"]
    assert "kayak" not in elsewhere["content"]
    assert attachment["attachment_id"] not in [s["document_id"] for s in elsewhere["sources"]]
    assert (await http.get("/api/v1/documents", headers=admin)).json() == documents_before

    # Deleting the conversation takes its attachments with it.
    assert (await http.delete(f"/api/v1/sessions/{owner['session_id']}", headers=auth(owner))).status_code == 204
    assert (await http.get(path, headers=auth(owner))).status_code in (403, 404)


async def test_operations_endpoints(stack: Stack, http: httpx.AsyncClient) -> None:
    # Its own traffic first, so the counters below exist whatever ran before.
    session = await new_session(http)
    turn = await http.post(
        f"/api/v1/sessions/{session['session_id']}/messages",
        json={"content": "How long does standard shipping take?"},
        headers=auth(session),
    )
    assert turn.status_code == 200
    ready = await http.get("/health/ready")
    assert ready.status_code == 200
    assert set(ready.json()["checks"]) == {"kafka", "redis", "outbound_relay", "lifecycle"}
    assert (await http.get("/health")).json()["status"] == "alive"
    metrics = (await http.get("/metrics")).text
    assert 'supportdesk_gateway_messages_total{channel="rest"}' in metrics
    assert "supportdesk_gateway_turn_seconds_bucket" in metrics
    assert "supportdesk_gateway_websockets" in metrics
    assert "supportdesk_received_messages_total" in metrics  # consumed from chat.outbound
    assert (await http.get("/docs")).status_code == 200
    assert (await http.get("/api/v1/info")).json()["name"] == "SupportDesk"
    assert "<title>SupportDesk</title>" in (await http.get("/")).text
    for name, port in stack.ops_ports.items():
        if name == "ingest":
            continue  # shares the agent's process in local Qdrant mode
        async with httpx.AsyncClient(timeout=10) as client:
            checks = (await client.get(f"http://127.0.0.1:{port}/health/ready")).json()["checks"]
            worker_metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        assert all(c["status"] == "up" for c in checks.values()), (name, checks)
        assert "supportdesk_received_messages_total" in worker_metrics
        if name == "agent":
            assert 'supportdesk_agent_answers_total{outcome="answered"}' in worker_metrics
