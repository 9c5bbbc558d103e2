"""The gateway in-process on FastStream's in-memory broker: its routes, relay
and hub, with the real session worker's handlers on the same broker and a
small agent that answers every turn by echoing it."""

import json

import httpx
import pytest
from faststream.kafka import KafkaBroker
from pydantic import ValidationError
from redis.asyncio import Redis

from builders import InProcess
from supportdesk_contracts.frames import CLIENT_FRAME
from supportdesk_gateway.app import build_gateway
from supportdesk_gateway.settings import GatewaySettings
from supportdesk_platform.kafka import NoProvisioning
from supportdesk_platform.ops import ops_app


async def new_session(http: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    created = (await http.post("/api/v1/sessions", json={})).json()
    return created["session_id"], {"Authorization": f"Bearer {created['token']}"}


async def test_a_rest_turn_runs_through_relay_and_hub(system: InProcess) -> None:
    sid, auth = await new_session(system.http)
    response = await system.http.post(f"/api/v1/sessions/{sid}/messages", json={"content": " hi "}, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json()["reply"]["content"] == "echo: hi"
    assert response.json()["reply"]["role"] == "assistant"
    history = (await system.http.get(f"/api/v1/sessions/{sid}/messages", headers=auth)).json()
    assert [(m["role"], m["content"]) for m in history] == [("user", "hi"), ("assistant", "echo: hi")]


async def test_a_repeated_message_id_is_answered_once(system: InProcess) -> None:
    sid, auth = await new_session(system.http)
    body = {"content": "hello", "message_id": "m-1"}
    first = await system.http.post(f"/api/v1/sessions/{sid}/messages", json=body, headers=auth)
    again = await system.http.post(f"/api/v1/sessions/{sid}/messages", json=body, headers=auth)
    assert first.json() == again.json()
    assert len(system.turns) == 1


async def test_sse_streams_ack_then_done(system: InProcess) -> None:
    sid, auth = await new_session(system.http)
    response = await system.http.post(f"/api/v1/sessions/{sid}/messages/stream", json={"content": "x"}, headers=auth)
    events = [line.removeprefix("event: ") for line in response.text.splitlines() if line.startswith("event: ")]
    assert events == ["ack", "done"]
    done = json.loads(response.text.split("event: done\ndata: ")[1].split("\n")[0])
    assert done["reply"]["content"] == "echo: x"


async def test_rest_and_websocket_refuse_the_same_bad_message_the_same_way(system: InProcess) -> None:
    sid, auth = await new_session(system.http)
    too_long = "x" * (system.gateway.context.settings.max_message_chars + 1)
    for content, reason in (("   ", "message content is empty"), (too_long, "message longer than")):
        response = await system.http.post(f"/api/v1/sessions/{sid}/messages", json={"content": content}, headers=auth)
        assert response.status_code == 422
        assert reason in response.json()["detail"]
    assert system.turns == []


async def test_text_that_is_not_valid_unicode_is_refused_on_every_channel(system: InProcess) -> None:
    # Found by fuzzing: JSON may escape a lone surrogate ("\\ud800"), which no
    # UTF-8 encoder (Redis, the cipher, Kafka) accepts.
    sid, auth = await new_session(system.http)
    body = b'{"content": "hi \\ud800"}'
    headers = {**auth, "content-type": "application/json"}
    for path in (f"/api/v1/sessions/{sid}/messages", f"/api/v1/sessions/{sid}/messages/stream"):
        response = await system.http.post(path, content=body, headers=headers)
        assert response.status_code == 422, response.text
        assert "unicode" in response.text.lower()
    with pytest.raises(ValidationError, match="Unicode"):
        CLIENT_FRAME.validate_python(json.loads('{"type": "message", "content": "hi \\ud800"}'))
    with pytest.raises(ValidationError, match="Unicode"):
        CLIENT_FRAME.validate_python(json.loads('{"type": "message", "content": "hi", "message_id": "\\udfff"}'))
    assert system.turns == []


async def test_an_offset_beyond_any_list_is_refused_not_sent_to_redis(system: InProcess) -> None:
    # Found by fuzzing: offset=2**70 reached Redis, which refused it (503).
    sid, auth = await new_session(system.http)
    admin = {"Authorization": f"Bearer {system.gateway.context.settings.admin_api_key.get_secret_value()}"}
    for path, headers in ((f"/api/v1/sessions/{sid}/messages", auth), ("/api/v1/documents", admin)):
        response = await system.http.get(path, params={"offset": 2**70}, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["query", "offset"]


async def test_the_openapi_document_describes_the_websocket_frames(system: InProcess) -> None:
    schemas = (await system.http.get("/openapi.json")).json()["components"]["schemas"]
    for name in ("ClientFrame", "ServerFrame", "AckFrame", "DeltaFrame", "ReplyFrame", "EscalatedFrame", "ErrorFrame"):
        assert name in schemas, name
    kinds = {ref["$ref"].rsplit("/", 1)[1] for ref in schemas["ServerFrame"]["oneOf"]}
    assert kinds == {"AckFrame", "DeltaFrame", "ReplyFrame", "EscalatedFrame", "StatusFrame", "ErrorFrame", "PongFrame"}


async def test_draining_makes_the_gateway_unready_at_once(system: InProcess) -> None:
    assert (await system.http.get("/health/ready")).json()["checks"]["lifecycle"]["status"] == "up"
    await system.gateway.service.drain()
    ready = await system.http.get("/health/ready")
    assert (ready.status_code, ready.json()["status"]) == (503, "draining")


async def test_with_an_ops_port_metrics_and_diagnostics_leave_the_public_port(redis: Redis, unique: str) -> None:
    """Behind an Ingress that routes the whole API port, /metrics and the
    diagnostics must not be reachable from the internet."""
    settings = GatewaySettings(kafka_topic_prefix=unique, redis_key_prefix=unique, gateway_ops_port=8100)
    gateway = build_gateway(settings, redis=redis, broker=KafkaBroker(), provisioner=NoProvisioning())
    public = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://gateway")
    ops = httpx.AsyncClient(transport=httpx.ASGITransport(app=ops_app(gateway.service.health)), base_url="http://ops")
    async with public, ops:
        assert (await public.get("/metrics")).status_code == 404
        assert (await public.get("/health/diagnostics")).status_code == 404
        assert (await public.get("/health")).status_code == 200
        assert (await public.get("/health/ready")).status_code == 503  # probes stay: the broker is not started
        assert (await ops.get("/metrics")).status_code == 200
        assert (await ops.get("/health/diagnostics")).json()["service"] == "gateway"


async def test_without_an_ops_port_everything_stays_on_the_api_port(redis: Redis, unique: str) -> None:
    settings = GatewaySettings(kafka_topic_prefix=unique, redis_key_prefix=unique)
    gateway = build_gateway(settings, redis=redis, broker=KafkaBroker(), provisioner=NoProvisioning())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.app), base_url="http://gateway") as public:
        assert (await public.get("/metrics")).status_code == 200
        assert (await public.get("/health/diagnostics")).status_code == 200


async def test_a_file_name_longer_than_the_upload_contract_allows_is_refused(system: InProcess) -> None:
    # Found by review: it passed the route and failed the event's validation (500, a record left queued).
    admin = {"Authorization": f"Bearer {system.gateway.context.settings.admin_api_key.get_secret_value()}"}
    name = "a" * 252 + ".txt"
    response = await system.http.post("/api/v1/documents", files={"file": (name, b"Hello.")}, headers=admin)
    assert response.status_code == 422, response.text
    assert "limited to 255 characters" in response.text
    assert (await system.http.get("/api/v1/documents", headers=admin)).json() == []
