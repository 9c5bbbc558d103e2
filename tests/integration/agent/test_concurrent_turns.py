"""One agent process answers different sessions at once, against the real
broker, even sessions that share a partition: a slow turn of one session
holds up no other, one session's turns stay in order, and a user who sends a
second message mid-answer gets what AGENT_DOUBLE_TEXT says (queue or
interrupt)."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from openai import AsyncOpenAI

from scripted_llm import ScriptedLlm, serve
from supportdesk_agent.app import build_worker
from supportdesk_agent.settings import AgentSettings
from supportdesk_contracts.events import TurnRequested
from supportdesk_knowledge.base import KnowledgeBase, open_index
from supportdesk_knowledge.embedder import Embedder
from supportdesk_knowledge.settings import KnowledgeSettings
from supportdesk_platform.kafka import key_of

pytestmark = pytest.mark.integration
SLOW_SECONDS = 4.0
QUESTION = "How long does shipping take?"


class Agent:
    def __init__(self, settings: AgentSettings, probe: KafkaBroker, llm: ScriptedLlm) -> None:
        self.settings = settings
        self.probe = probe
        self.llm = llm
        self.completed: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.deltas: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def ask(self, session_id: str, message_id: str, content: str = QUESTION) -> None:
        turn = TurnRequested(session_id=session_id, message_id=message_id, content=content)
        await self.probe.publish(turn, self.settings.topics.agent_turns, key=key_of(session_id))

    async def replies(self, count: int) -> list[dict[str, Any]]:
        got = []
        async with asyncio.timeout(60):
            while len(got) < count:
                got.append(await self.completed.get())
        return got

    async def answered(self, count: int) -> list[str]:
        return [r["reply_to"] for r in await self.replies(count)]

    async def first_delta_of(self, message_id: str) -> None:
        async with asyncio.timeout(30):
            while (await self.deltas.get())["reply_to"] != message_id:
                pass


AgentFactory = Callable[..., Any]


@pytest.fixture
async def start_agent(
    kafka_bootstrap: str, redis_url: str, unique: str, qdrant_path: str, embedder: Embedder
) -> AsyncIterator[AgentFactory]:
    stops: list[Callable[[], Any]] = []
    knowledge = KnowledgeSettings(qdrant_path=qdrant_path)
    index = open_index(knowledge, embedder.dimension)
    await index.ensure_collection()
    kb = KnowledgeBase(knowledge, embedder, index)
    await kb.add_document("d-ship", "Shipping information", "Standard shipping takes 3-5 business days.")

    async def start(llm: ScriptedLlm, **overrides: Any) -> Agent:
        server, task = await serve(llm)
        settings = AgentSettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            kafka_topic_prefix=unique,
            # One partition: concurrency must come from within it.
            kafka_partitions=1,
            redis_url=redis_url,
            redis_key_prefix=unique,
            consumer_group=f"{unique}-agent",
            knowledge=knowledge,
            llm_timeout_seconds=30,
            llm_budget_tokens=0,
            **overrides,
        )
        client = AsyncOpenAI(base_url=llm.url, api_key="x", max_retries=0)
        worker = await build_worker(settings, knowledge=kb, llm=client)
        probe = KafkaBroker(kafka_bootstrap)
        agent = Agent(settings, probe, llm)

        @probe.subscriber(settings.topics.chat_inbound, fetch_max_wait_ms=5, auto_offset_reset="earliest")
        async def on_completed(message: KafkaMessage) -> None:
            await agent.completed.put(json.loads(message.body))

        @probe.subscriber(settings.topics.chat_outbound, fetch_max_wait_ms=5, auto_offset_reset="earliest")
        async def on_delta(message: KafkaMessage) -> None:
            await agent.deltas.put(json.loads(message.body))

        await worker.start()
        await probe.start()

        async def stop() -> None:
            await probe.stop()
            await worker.stop()
            await client.close()
            server.should_exit = True
            await task

        stops.append(stop)
        return agent

    yield start
    for stop in reversed(stops):
        await stop()
    await kb.close()


def session() -> str:
    return str(uuid.uuid4())


async def test_a_slow_turn_holds_up_no_other_session_on_its_partition(start_agent: AgentFactory) -> None:
    agent = await start_agent(ScriptedLlm(slow_when="slow", slow_seconds=SLOW_SECONDS))
    slow_session, other_session = session(), session()
    await agent.ask(slow_session, "slow-1", f"slow: {QUESTION}")
    await asyncio.sleep(0.5)
    await agent.ask(other_session, "fast-1")
    await agent.ask(slow_session, "after-slow", f"And {QUESTION}")
    # The other session is answered while the slow turn runs; the slow
    # session's second turn waits for its first.
    assert await agent.answered(3) == ["fast-1", "slow-1", "after-slow"]


async def test_double_texting_queued_answers_both_in_order(start_agent: AgentFactory) -> None:
    agent = await start_agent(ScriptedLlm(word_seconds=0.3))
    chat = session()
    await agent.ask(chat, "first")
    await agent.first_delta_of("first")
    await agent.ask(chat, "second", "Are you there?")
    first, second = await agent.replies(2)
    assert [first["reply_to"], second["reply_to"]] == ["first", "second"]
    assert not first["reply"]["interrupted"]
    assert not second["reply"]["interrupted"]
    assert first["reply"]["content"] == agent.llm.answer


async def test_double_texting_interrupt_cuts_the_running_answer_and_answers_the_newest(
    start_agent: AgentFactory,
) -> None:
    agent = await start_agent(ScriptedLlm(word_seconds=0.3), double_text="interrupt")
    chat = session()
    await agent.ask(chat, "first")
    await agent.first_delta_of("first")
    await agent.ask(chat, "second", "Actually, how long does standard shipping take?")
    await agent.ask(chat, "third", QUESTION)
    first, second, third = await agent.replies(3)
    assert [first["reply_to"], second["reply_to"], third["reply_to"]] == ["first", "second", "third"]
    # Cut short where it was: a part of the answer, marked as such.
    assert first["reply"]["interrupted"]
    assert agent.llm.answer.startswith(first["reply"]["content"])
    assert first["reply"]["content"] != agent.llm.answer
    # Superseded by the third, before it began or while it ran.
    assert second["reply"]["interrupted"]
    assert not third["reply"]["interrupted"]
    assert third["reply"]["content"] == agent.llm.answer
    assert 2 <= len(agent.llm.requests) <= 3
