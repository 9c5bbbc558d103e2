"""Session and agent workers in-process against the real broker, Redis and
Qdrant local mode: one turn through Kafka, and a poison event dead-lettered."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from redis.asyncio import Redis

from builders import BothOwners, session_store
from supportdesk_agent.app import build_worker as build_agent
from supportdesk_agent.settings import AgentSettings
from supportdesk_contracts.events import MessageReceived
from supportdesk_knowledge.base import KnowledgeBase, open_index
from supportdesk_knowledge.embedder import Embedder
from supportdesk_knowledge.settings import KnowledgeSettings
from supportdesk_platform.lifecycle import Service
from supportdesk_session.app import build_worker as build_session
from supportdesk_session.settings import SessionWorkerSettings

pytestmark = pytest.mark.integration


class Pipeline:
    def __init__(self, store: BothOwners, probe: KafkaBroker, settings: SessionWorkerSettings) -> None:
        self.store = store
        self.probe = probe
        self.settings = settings
        self.outbound: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.dead: asyncio.Queue[dict[str, Any]] = asyncio.Queue()


@pytest.fixture
async def pipeline(
    kafka_bootstrap: str, redis_url: str, redis: Redis, unique: str, qdrant_path: str, embedder: Embedder
) -> AsyncIterator[Pipeline]:
    common = {
        "kafka_bootstrap_servers": kafka_bootstrap,
        "kafka_topic_prefix": unique,
        "kafka_partitions": 2,
        "redis_url": redis_url,
        "redis_key_prefix": unique,
    }
    session_settings = SessionWorkerSettings(**common, consumer_group=f"{unique}-session")
    knowledge = KnowledgeSettings(qdrant_path=qdrant_path)
    index = open_index(knowledge, embedder.dimension)
    await index.ensure_collection()
    kb = KnowledgeBase(knowledge, embedder, index)
    await kb.add_document("d-ship", "Shipping information", "Standard shipping takes 3-5 business days.")
    agent_settings = AgentSettings(**common, consumer_group=f"{unique}-agent", knowledge=knowledge)

    # Clients passed in stay the caller's: the workers use them, the test closes them.
    workers: list[Service] = [
        build_session(session_settings, redis=redis),
        await build_agent(agent_settings, knowledge=kb),
    ]
    probe = KafkaBroker(kafka_bootstrap)
    p = Pipeline(session_store(redis, unique), probe, session_settings)

    @probe.subscriber(session_settings.topics.chat_outbound, fetch_max_wait_ms=5, auto_offset_reset="earliest")
    async def on_outbound(message: KafkaMessage) -> None:
        await p.outbound.put(json.loads(message.body))

    @probe.subscriber(session_settings.topics.dead_letters, fetch_max_wait_ms=5, auto_offset_reset="earliest")
    async def on_dead(message: KafkaMessage) -> None:
        await p.dead.put(json.loads(message.body))

    for worker in workers:
        await worker.start()
    await probe.start()
    yield p
    await probe.stop()
    for worker in workers:
        await worker.stop()
    await kb.close()


async def next_of(queue: asyncio.Queue[dict[str, Any]], event_type: str, timeout: float = 30) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            event = await queue.get()
            if event.get("event_type") == event_type:
                return event


async def test_one_turn_through_the_real_broker(pipeline: Pipeline) -> None:
    record, _ = await pipeline.store.create(None)
    event = MessageReceived(
        session_id=record.session_id,
        message_id="m1",
        content="How long does standard shipping take?",
        channel="rest",
        gateway_id="test",
    )
    await pipeline.probe.publish(event, pipeline.settings.topics.chat_inbound, key=record.session_id.encode())
    ack = await next_of(pipeline.outbound, "message.accepted")
    assert ack["seq"] == 1
    delta = await next_of(pipeline.outbound, "reply.delta")
    assert delta["reply_to"] == "m1"
    recorded = await next_of(pipeline.outbound, "reply.recorded")
    assert "3-5 business days" in recorded["reply"]["content"]
    assert recorded["reply"]["sources"][0]["document_id"] == "d-ship"
    assert recorded["seq"] == 2
    assert [m["role"] for m in await pipeline.store.history(record.session_id)] == ["user", "assistant"]


async def test_a_poison_event_is_dead_lettered_and_the_partition_moves_on(pipeline: Pipeline) -> None:
    record, _ = await pipeline.store.create(None)
    key = record.session_id.encode()
    inbound = pipeline.settings.topics.chat_inbound
    await pipeline.probe.publish(b"{broken", inbound, key=key)
    dead = await next_of(pipeline.dead, "event.dead_lettered")
    assert dead["payload"] == "{broken"
    assert dead["consumer"] == "session"
    event = MessageReceived(session_id=record.session_id, message_id="m2", content="hi", channel="ws", gateway_id="t")
    await pipeline.probe.publish(event, inbound, key=key)
    assert (await next_of(pipeline.outbound, "message.accepted"))["message_id"] == "m2"
