"""Tracing as an operator turns it on: the standard OTEL_* variables point
every service at an OTLP/HTTP receiver (a real protobuf decoder, as a
collector is); one user message must come back as one trace, one tree, across
the gateway, the broker, the session worker and the agent. And the Kafka
headers an operator reads with a plain consumer name each event's own turn."""

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from aiokafka import AIOKafkaConsumer
from test_stack import QUESTION, auth, base, frames_until, new_session, ws_url

import otlp_receiver
from devstack import Stack
from otlp_receiver import ExportedSpan, Receiver
from stacks import ADMIN_KEY, StackFactory

pytestmark = pytest.mark.e2e

SERVICES = {"supportdesk-gateway", "supportdesk-session", "supportdesk-agent"}
CONSUMER, PRODUCER, SERVER = 5, 4, 2  # OTLP span kinds
FORGED_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = otlp_receiver.start(receiver)
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def traced(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, make_stack: StackFactory, receiver: Receiver
) -> Iterator[Stack]:
    stack = make_stack(
        redis_url,
        tmp_path_factory.mktemp("traced"),
        replicas=1,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        # Exported within a fifth of a second, not the default five.
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=e2e",
        # Per-message lines too, to find a turn's records by its trace.
        LOG_LEVEL="DEBUG",
    )
    stack.start()
    yield stack
    stack.stop()


def assert_one_tree(spans: list[ExportedSpan]) -> ExportedSpan:
    """Every span's parent is in the trace, and exactly one span has none."""
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if not s.parent_id]
    orphans = [(s.service, s.name) for s in spans if s.parent_id and s.parent_id not in ids]
    assert len(roots) == 1, [(s.service, s.name) for s in roots]
    assert not orphans, orphans
    return roots[0]


def trace_with(receiver: Receiver, conversation_id: str) -> list[ExportedSpan]:
    for spans in receiver.traces().values():
        if any(s.attributes.get("messaging.message.conversation_id") == conversation_id for s in spans):
            return spans
    return []


async def settled(
    receiver: Receiver, conversation_id: str, done: Callable[[list[ExportedSpan]], bool]
) -> list[ExportedSpan]:
    """The trace once `done` holds for it and no span has come for a moment
    (spans of one trace come from several processes, each on its own clock)."""
    deadline = time.monotonic() + 30
    count, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        spans = trace_with(receiver, conversation_id)
        if len(spans) != count:
            count, quiet_since = len(spans), time.monotonic()
        elif spans and done(spans) and time.monotonic() - quiet_since > 1.0:
            return spans
        await asyncio.sleep(0.2)
    raise AssertionError(
        f"trace incomplete: {sorted((s.service, s.name) for s in trace_with(receiver, conversation_id))}"
    )


async def test_a_websocket_message_is_one_trace_across_the_services(traced: Stack, receiver: Receiver) -> None:
    async with httpx.AsyncClient(base_url=base(traced), timeout=30) as http:
        session = await new_session(http)
    message_id = str(uuid.uuid4())
    async with websockets.connect(ws_url(traced, session["session_id"], session["token"])) as ws:
        await ws.send(json.dumps({"type": "message", "content": QUESTION, "message_id": message_id}))
        frames = await frames_until(ws, "reply")
    assert frames[-1]["sources"]

    def complete(spans: list[ExportedSpan]) -> bool:
        names = {(s.service, s.name) for s in spans}
        return ("supportdesk-gateway", "deliver") in names and ("supportdesk-agent", "search") in names

    spans = await settled(receiver, message_id, complete)
    root = assert_one_tree(spans)
    assert (root.service, root.name, root.kind) == ("supportdesk-gateway", "ws message", SERVER)
    assert {s.service for s in spans} >= SERVICES
    names = {(s.service, s.name) for s in spans}
    topics = f"{traced.extra_env['KAFKA_TOPIC_PREFIX']}."
    # The way there and back, hop by hop.
    for service, name in [
        ("supportdesk-gateway", f"{topics}chat.inbound.v1 publish"),
        ("supportdesk-session", f"{topics}chat.inbound.v1 process"),
        ("supportdesk-session", f"{topics}agent.turns.v1 publish"),
        ("supportdesk-agent", f"{topics}agent.turns.v1 process"),
        ("supportdesk-agent", "embed query"),
        ("supportdesk-agent", "search"),
        ("supportdesk-agent", f"{topics}chat.outbound.v1 publish"),  # the deltas
        ("supportdesk-agent", f"{topics}chat.inbound.v1 publish"),  # the completed reply
        ("supportdesk-session", f"{topics}chat.outbound.v1 publish"),  # the recorded reply
        ("supportdesk-gateway", f"{topics}chat.outbound.v1 process"),
        ("supportdesk-gateway", "deliver"),
    ]:
        assert (service, name) in names, (service, name, sorted(names))
    # Messaging spans as the semantic conventions name them.
    consumed = [s for s in spans if s.kind == CONSUMER and s.name.endswith("agent.turns.v1 process")]
    attributes = consumed[0].attributes
    assert attributes["messaging.system"] == "kafka"
    assert attributes["messaging.operation"] == "process"
    assert attributes["messaging.consumer.group.name"]
    assert isinstance(attributes["messaging.kafka.destination.partition"], int)
    assert isinstance(attributes["messaging.kafka.message.offset"], int)
    assert attributes["messaging.message.conversation_id"] == message_id
    # The current conventions' names too.
    assert attributes["messaging.destination.name"] == f"{topics}agent.turns.v1"
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.destination.partition.id"] == str(attributes["messaging.kafka.destination.partition"])
    assert attributes["messaging.kafka.offset"] == attributes["messaging.kafka.message.offset"]
    search = next(s for s in spans if s.name == "search")
    assert search.attributes["db.system.name"] == "qdrant"
    assert search.attributes["supportdesk.hits"] >= 1
    # From a log line to its trace: the session worker's records of this turn.
    assert traced.log_dir is not None
    records = [json.loads(line) for line in (traced.log_dir / "session.log").read_text().splitlines()]
    ours = [r for r in records if r.get("correlation_id") == message_id]
    assert ours
    assert {r["trace_id"] for r in ours} == {root.trace_id}
    assert all(r["session_id"] == session["session_id"] and r["span_id"] for r in ours)


async def test_uvicorns_own_records_are_json_lines_too(traced: Stack) -> None:
    """What uvicorn logs itself (a malformed request) is one JSON object per
    line like every other record, not a line of plain text among them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", traced.gateway_port)
    writer.write(b"NOT AN HTTP REQUEST\r\n\r\n")
    await writer.drain()
    await reader.read()
    writer.close()
    assert traced.log_dir is not None
    log = traced.log_dir / f"gateway-{traced.gateway_port}.log"
    async with asyncio.timeout(10):
        while "Invalid HTTP request" not in log.read_text():
            await asyncio.sleep(0.1)
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line parses
    [invalid] = [r for r in records if "Invalid HTTP request" in r["msg"]]
    assert (invalid["logger"], invalid["level"], invalid["service"]) == ("uvicorn.error", "WARNING", "gateway")


async def test_an_upload_is_one_trace_through_ingest(traced: Stack, receiver: Receiver, tmp_path: Path) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    text = "Kayak rentals are available from 9 am to 5 pm at the north dock.\n" * 40
    async with httpx.AsyncClient(base_url=base(traced), timeout=30) as http:
        upload = await http.post("/api/v1/documents", files={"file": ("kayaks.txt", text.encode())}, headers=admin)
        assert upload.status_code == 202, upload.text
        document_id = upload.json()["document_id"]
        async with asyncio.timeout(60):
            while (await http.get(f"/api/v1/documents/{document_id}", headers=admin)).json()["status"] != "indexed":
                await asyncio.sleep(0.2)

    def uploaded(spans: list[ExportedSpan]) -> bool:
        return any(s.attributes.get("supportdesk.document.bytes") == len(text) for s in spans)

    deadline = time.monotonic() + 30
    while not (traces := [t for t in receiver.traces().values() if uploaded(t)]) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert traces, "no trace of the upload"
    await asyncio.sleep(1.5)  # the rest of its spans, from the other processes
    spans = next(t for t in receiver.traces().values() if uploaded(t))
    root = assert_one_tree(spans)
    assert root.service == "supportdesk-gateway"
    assert root.kind == SERVER
    assert root.attributes.get("http.route") == "/api/v1/documents"
    names = {s.name for s in spans if s.service == "supportdesk-agent"}  # ingest shares the agent's process here
    assert {"parse", "chunk", "embed batch", "upsert"} <= names, names


async def test_kafka_correlation_headers_are_the_events_own(traced: Stack) -> None:
    async with httpx.AsyncClient(base_url=base(traced), timeout=30) as http:
        session = await new_session(http)
        message_id = str(uuid.uuid4())
        reply = await http.post(
            f"/api/v1/sessions/{session['session_id']}/messages",
            json={"content": QUESTION, "message_id": message_id},
            headers=auth(session),
        )
        assert reply.status_code == 200
    prefix = traced.extra_env["KAFKA_TOPIC_PREFIX"]
    topics = [f"{prefix}.{name}.v1" for name in ("chat.inbound", "agent.turns", "chat.outbound")]
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=traced.kafka_bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: dict[str, int] = {}
    try:
        async with asyncio.timeout(20):
            while len(seen) < len(topics):
                batch = await consumer.getmany(timeout_ms=500)
                if not batch and seen:
                    break
                for records in batch.values():
                    for record in records:
                        event = json.loads(record.value)
                        if event.get("session_id") != session["session_id"] or not event.get("correlation_id"):
                            continue
                        header = dict(record.headers).get("correlation_id", b"").decode()
                        assert header == event["correlation_id"], (record.topic, event.get("type"))
                        seen[record.topic] = seen.get(record.topic, 0) + 1
    finally:
        await consumer.stop()
    assert set(seen) == set(topics), seen


async def test_an_sse_turn_is_one_trace_rooted_in_its_http_request(traced: Stack, receiver: Receiver) -> None:
    message_id = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=base(traced), timeout=30) as http:
        session = await new_session(http)
        async with http.stream(
            "POST",
            f"/api/v1/sessions/{session['session_id']}/messages/stream",
            json={"content": QUESTION, "message_id": message_id},
            # A client's own trace context is not believed: no client decides
            # what is recorded, nor grafts our spans onto its trace.
            headers={**auth(session), "traceparent": f"00-{FORGED_TRACE}-00f067aa0ba902b7-01"},
        ) as response:
            body = "".join([chunk async for chunk in response.aiter_text()])
    assert "event: done" in body

    def complete(spans: list[ExportedSpan]) -> bool:
        return any(s.name == "deliver" for s in spans) and any(s.name == "search" for s in spans)

    spans = await settled(receiver, message_id, complete)
    root = assert_one_tree(spans)
    assert (root.service, root.kind) == ("supportdesk-gateway", SERVER)
    assert root.attributes["http.route"] == "/api/v1/sessions/{session_id}/messages/stream"
    assert {s.service for s in spans} >= SERVICES
    assert root.trace_id != FORGED_TRACE
    assert FORGED_TRACE not in receiver.traces()
