"""The gateway in-process on FastStream's in-memory broker: its routes, relay
and hub, with the real session worker's handlers on the same broker and a
small agent that answers every turn by echoing it."""

import json

import httpx
from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from builders import InProcess
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


async def test_the_openapi_document_describes_the_websocket_frames(system: InProcess) -> None:
    schemas = (await system.http.get("/openapi.json")).json()["components"]["schemas"]
    for name in ("ClientFrame", "ServerFrame", "AckFrame", "DeltaFrame", "ReplyFrame", "EscalatedFrame", "ErrorFrame"):
        assert name in schemas, name
    kinds = {ref["$ref"].rsplit("/", 1)[1] for ref in schemas["ServerFrame"]["oneOf"]}
    assert kinds == {"AckFrame", "DeltaFrame", "ReplyFrame", "EscalatedFrame", "ErrorFrame", "PongFrame"}


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
