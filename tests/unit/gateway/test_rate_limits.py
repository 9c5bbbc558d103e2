"""Rate limits: per client IP for requests and session creation, per session
for chat messages on every channel; refusals say when to retry."""

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from builders import InProcess
from supportdesk_contracts.frames import ErrorFrame
from supportdesk_gateway.api.ws import ChatSocket
from supportdesk_gateway.limits import ClientAddress

SESSIONS_3 = pytest.mark.parametrize("gateway_overrides", [{"rate_limit_sessions": 3}])
MESSAGES_2 = pytest.mark.parametrize("gateway_overrides", [{"rate_limit_messages": 2}])
REQUESTS_5 = pytest.mark.parametrize("gateway_overrides", [{"rate_limit_requests": 5}])


@SESSIONS_3
async def test_session_creation_is_limited_per_client_address(system: InProcess) -> None:
    statuses = [(await system.http.post("/api/v1/sessions", json={})).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    refused = await system.http.post("/api/v1/sessions", json={})
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert "retry in" in refused.json()["detail"]


@REQUESTS_5
async def test_every_api_request_counts_and_carries_its_headers(system: InProcess) -> None:
    first = await system.http.get("/api/v1/info")
    assert (first.status_code, first.headers["RateLimit-Limit"], first.headers["RateLimit-Remaining"]) == (
        200,
        "5",
        "4",
    )
    statuses = [(await system.http.get("/api/v1/info")).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    assert (await system.http.get("/health")).status_code == 200  # probes are never limited


@REQUESTS_5
async def test_a_forged_forwarded_for_header_does_not_reset_the_limit(system: InProcess) -> None:
    statuses = [
        (await system.http.get("/api/v1/info", headers={"X-Forwarded-For": f"10.0.0.{n}"})).status_code
        for n in range(6)
    ]
    assert statuses[-1] == 429  # no trusted proxy: the header is ignored


@MESSAGES_2
async def test_messages_are_limited_per_session_across_channels(system: InProcess) -> None:
    created = (await system.http.post("/api/v1/sessions", json={})).json()
    sid, auth = created["session_id"], {"Authorization": f"Bearer {created['token']}"}
    assert (await system.http.post(f"/api/v1/sessions/{sid}/messages", json={"content": "a"}, headers=auth)).is_success
    assert (await system.http.post(f"/api/v1/sessions/{sid}/messages", json={"content": "b"}, headers=auth)).is_success
    refused = await system.http.post(f"/api/v1/sessions/{sid}/messages/stream", json={"content": "c"}, headers=auth)
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    connection = system.gateway.context.hub.connect(sid)
    socket = ChatSocket(None, system.gateway.context, connection)  # type: ignore[arg-type]  # handle() never touches it
    await socket.handle(json.dumps({"type": "message", "content": "d", "message_id": "m-d"}))
    frame = connection.pending.popleft()
    assert isinstance(frame, ErrorFrame)
    assert (frame.code, frame.reply_to) == ("rate_limited", "m-d")
    assert frame.retry_after is not None
    assert 0 < frame.retry_after <= 60
    other = (await system.http.post("/api/v1/sessions", json={})).json()  # another session is not affected
    path = f"/api/v1/sessions/{other['session_id']}/messages"
    sent = await system.http.post(path, json={"content": "x"}, headers={"Authorization": f"Bearer {other['token']}"})
    assert sent.is_success


def test_the_client_address_comes_from_forwarded_for_only_through_trusted_proxies() -> None:
    def scope(peer: str, forwarded: str) -> dict[str, object]:
        return {"type": "http", "client": (peer, 1234), "headers": [(b"x-forwarded-for", forwarded.encode())]}

    clients = ClientAddress(["10.0.0.0/8", "192.168.1.1"])
    assert clients.of(scope("10.1.2.3", "203.0.113.7")) == "203.0.113.7"
    # The nearest untrusted hop: what the client put first is not believed.
    assert clients.of(scope("10.1.2.3", "1.1.1.1, 203.0.113.7, 10.9.9.9")) == "203.0.113.7"
    assert clients.of(scope("198.51.100.1", "203.0.113.7")) == "198.51.100.1"  # not from a proxy
    assert ClientAddress([""]).of(scope("10.1.2.3", "203.0.113.7")) == "10.1.2.3"


@MESSAGES_2
async def test_resumes_are_limited_per_session(system: InProcess) -> None:
    """Each resume decrypts up to a hundred stored frames: a client cannot
    make the gateway do that in a loop."""
    created = (await system.http.post("/api/v1/sessions", json={})).json()
    connection = system.gateway.context.hub.connect(created["session_id"])
    socket = ChatSocket(None, system.gateway.context, connection)  # type: ignore[arg-type]
    for _ in range(3):
        await socket.handle(json.dumps({"type": "resume", "after_seq": 0}))
    frame = connection.pending.popleft()
    assert isinstance(frame, ErrorFrame)
    assert frame.code == "rate_limited"


def refusals(metrics_text: str) -> dict[str, float]:
    """supportdesk_gateway_rate_limited_total by limit, from /metrics."""
    [family] = [f for f in text_string_to_metric_families(metrics_text) if f.name == "supportdesk_gateway_rate_limited"]
    return {s.labels["limit"]: s.value for s in family.samples if s.name.endswith("_total")}


@pytest.mark.parametrize("gateway_overrides", [{"rate_limit_sessions": 1, "rate_limit_messages": 1}])
async def test_each_refusal_is_counted_by_the_name_of_its_limit(system: InProcess) -> None:
    created = (await system.http.post("/api/v1/sessions", json={})).json()
    assert (await system.http.post("/api/v1/sessions", json={})).status_code == 429
    sid, auth = created["session_id"], {"Authorization": f"Bearer {created['token']}"}
    for content in ("a", "b"):
        await system.http.post(f"/api/v1/sessions/{sid}/messages", json={"content": content}, headers=auth)
    socket = ChatSocket(None, system.gateway.context, system.gateway.context.hub.connect(sid))  # type: ignore[arg-type]
    for _ in range(2):
        await socket.handle(json.dumps({"type": "resume", "after_seq": 0}))
    counted = refusals((await system.http.get("/metrics")).text)
    # Every limit has its series from the start (increase() sees a first refusal); no request was refused.
    assert counted == {"requests": 0, "sessions": 1, "messages": 1, "resumes": 1}


@REQUESTS_5
async def test_refused_requests_are_counted(system: InProcess) -> None:
    for _ in range(7):
        await system.http.get("/api/v1/info")
    assert refusals((await system.http.get("/metrics")).text) == {
        "requests": 2,
        "sessions": 0,
        "messages": 0,
        "resumes": 0,
    }
