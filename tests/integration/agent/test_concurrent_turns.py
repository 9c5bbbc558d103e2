"""One agent process answers different sessions at once, against the real
broker: a slow turn of one session does not hold up another session's turn,
while one session's turns are still answered in order."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka.partitioner import murmur2
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from openai import AsyncOpenAI

from scripted_llm import ScriptedLlm, serve
from supportdesk_agent.app import build_worker
from supportdesk_agent.settings import AgentSettings
from supportdesk_contracts.events import TurnRequested
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_knowledge.embedder import Embedder
from supportdesk_knowledge.index import KnowledgeIndex, open_client
from supportdesk_knowledge.settings import KnowledgeSettings
from supportdesk_platform.kafka import key_of

pytestmark = pytest.mark.integration
PARTITIONS = 2
SLOW_SECONDS = 4.0


def session_on(partition: int) -> str:
    """A session id that Kafka's default partitioner puts on `partition`."""
    while True:
        session_id = str(uuid.uuid4())
        if (murmur2(key_of(session_id)) & 0x7FFFFFFF) % PARTITIONS == partition:
            return session_id


class Agent:
    def __init__(self, settings: AgentSettings, probe: KafkaBroker) -> None:
        self.settings = settings
        self.probe = probe
        self.completed: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def ask(self, session_id: str, message_id: str, content: str) -> None:
        turn = TurnRequested(session_id=session_id, message_id=message_id, content=content)
        await self.probe.publish(turn, self.settings.topics.agent_turns, key=key_of(session_id))

    async def answered(self, count: int) -> list[str]:
        order = []
        async with asyncio.timeout(60):
            while len(order) < count:
                order.append((await self.completed.get())["reply_to"])
        return order


@pytest.fixture
async def agent(
    kafka_bootstrap: str, redis_url: str, unique: str, qdrant_path: str, embedder: Embedder
) -> AsyncIterator[Agent]:
    llm = ScriptedLlm(slow_when="slow", slow_seconds=SLOW_SECONDS)
    server, task = await serve(llm)
    knowledge = KnowledgeSettings(qdrant_path=qdrant_path)
    index = KnowledgeIndex(open_client(knowledge), knowledge.qdrant_collection, embedder.dimension, server=False)
    await index.ensure_collection()
    kb = KnowledgeBase(knowledge, embedder, index)
    await kb.add_document("d-ship", "Shipping information", "Standard shipping takes 3-5 business days.")
    settings = AgentSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=unique,
        kafka_partitions=PARTITIONS,
        redis_url=redis_url,
        redis_key_prefix=unique,
        consumer_group=f"{unique}-agent",
        knowledge=knowledge,
        agent_concurrency=PARTITIONS,
        llm_timeout_seconds=30,
        llm_budget_tokens=0,
    )
    client = AsyncOpenAI(base_url=llm.url, api_key="x", max_retries=0)
    worker = await build_worker(settings, knowledge=kb, llm=client)
    probe = KafkaBroker(kafka_bootstrap)
    ready = Agent(settings, probe)

    @probe.subscriber(settings.topics.chat_inbound, fetch_max_wait_ms=5, auto_offset_reset="earliest")
    async def on_completed(message: KafkaMessage) -> None:
        await ready.completed.put(json.loads(message.body))

    await worker.start()
    await probe.start()
    # Both consumers hold a partition once a turn on each is answered.
    await ready.ask(session_on(0), "warm-0", "How long does shipping take?")
    await ready.ask(session_on(1), "warm-1", "How long does shipping take?")
    assert sorted(await ready.answered(2)) == ["warm-0", "warm-1"]
    yield ready
    await probe.stop()
    await worker.stop()
    await client.close()
    await kb.close()
    server.should_exit = True
    await task


async def test_a_slow_turn_does_not_hold_up_another_session(agent: Agent) -> None:
    slow_session, other_session = session_on(0), session_on(1)
    await agent.ask(slow_session, "slow-1", "slow: how long does shipping take?")
    await asyncio.sleep(0.5)
    await agent.ask(other_session, "fast-1", "How long does shipping take?")
    await agent.ask(slow_session, "after-slow", "And how long does shipping take?")
    # The other session is answered while the slow turn runs; the slow
    # session's second turn waits for its first.
    assert await agent.answered(3) == ["fast-1", "slow-1", "after-slow"]
