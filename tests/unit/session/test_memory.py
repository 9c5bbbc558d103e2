"""Memory within a token budget: the latest turns that fit go to the agent as
they were, older ones are handed over once to be condensed, and the summary
that comes back (MemoryCondensed) stands in for them from then on. The
session worker's handlers on FastStream's in-memory broker, the real store
on the test Redis."""

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from redis.asyncio import Redis

from builders import BothOwners, received, session_store
from supportdesk_contracts.events import MemoryCondensed, Reply, ReplyCompleted
from supportdesk_session.handlers import InboundRouter, build_router
from supportdesk_session.memory import recall
from supportdesk_session.settings import SessionWorkerSettings
from supportdesk_sessions.state import Memory


def message(i: int, content: str, role: str = "user") -> tuple[int, dict[str, str]]:
    return i, {"id": f"m{i}", "role": role, "content": content}


def test_the_window_is_the_newest_turns_within_the_budget() -> None:
    memory = Memory(
        summary="User: asked about shipping.",
        summary_upto=1,
        messages=[message(1, "a" * 40), message(2, "b" * 40), message(3, "c" * 40), message(4, "now")],
    )
    # 10 tokens each; a budget of 25 keeps two, 2 is older and not yet condensed.
    got = recall(memory, "m4", max_turns=12, budget_tokens=25)
    assert [t.content[0] for t in got.history] == ["b", "c"]
    assert got.summary == "User: asked about shipping."
    assert got.condense_upto == 1  # message 1 is summarised already; nothing new to condense
    assert got.condense == []


def test_older_turns_are_condensed_once_and_the_latest_always_kept() -> None:
    memory = Memory(messages=[message(5, "x" * 400), message(6, "y" * 400), message(7, "z" * 4000), message(8, "?")])
    got = recall(memory, "m8", max_turns=12, budget_tokens=100)
    assert [t.content[0] for t in got.history] == ["z"]  # over budget alone, but the latest is never dropped
    assert [t.content[0] for t in got.condense] == ["x", "y"]
    assert got.condense_upto == 6
    assert recall(memory, "m8", max_turns=2, budget_tokens=10_000).condense_upto == 5
    assert recall(memory, "m8", max_turns=0, budget_tokens=10_000).history == []


class Harness:
    def __init__(
        self, settings: SessionWorkerSettings, store: BothOwners, broker: KafkaBroker, inbound: InboundRouter
    ) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker
        self.inbound = inbound
        self.turns: list[dict[str, Any]] = []

    async def publish(self, event: Any, topic: str) -> None:
        """Publishes and waits until the worker has handled it: its events
        are handled in per-session lanes, after the publish returns."""
        await self.broker.publish(event, topic)
        await self.inbound.dispatcher.idle()

    async def say(self, session_id: str, message_id: str, content: str) -> dict[str, Any]:
        await self.publish(received(session_id, message_id, content), self.settings.topics.chat_inbound)
        return self.turns[-1]

    async def answer(self, session_id: str, reply_to: str, content: str) -> None:
        reply = Reply(id=f"r-{reply_to}", content=content, confidence=0.8)
        completed = ReplyCompleted(session_id=session_id, reply_to=reply_to, reply=reply)
        await self.publish(completed, self.settings.topics.chat_inbound)


@pytest.fixture
async def harness(redis: Redis, unique: str) -> AsyncIterator[Harness]:
    # One turn of ~30 tokens fits; two do not.
    settings = SessionWorkerSettings(
        kafka_topic_prefix=unique, redis_key_prefix=unique, history_turns=12, memory_token_budget=50
    )
    store = session_store(redis, unique)
    broker = KafkaBroker()
    inbound = build_router(settings, store)
    broker.include_router(inbound.router)
    h = Harness(settings, store, broker, inbound)

    @broker.subscriber(settings.topics.agent_turns)
    async def collect(message: KafkaMessage) -> None:
        h.turns.append(json.loads(message.body))

    async with TestKafkaBroker(broker):
        yield h


async def test_turns_that_leave_the_budget_are_condensed_and_the_summary_stands_in(harness: Harness) -> None:
    record, _ = await harness.store.create(None)
    sid = record.session_id
    await harness.say(sid, "u1", "My order number is 4417 and the parcel never arrived." + " " * 70)
    await harness.answer(sid, "u1", "I am sorry to hear that; I have looked up order 4417." + " " * 70)
    turn = await harness.say(sid, "u2", "Can you send a new one?")
    # u1 and its answer (~30 tokens each) do not both fit: the older goes to be condensed.
    assert [t["content"][:8] for t in turn["history"]] == ["I am sor"]
    assert [t["content"][:8] for t in turn["condense"]] == ["My order"]
    assert (turn["summary"], turn["condense_upto"]) == ("", 1)

    condensed = MemoryCondensed(session_id=sid, summary="User: order 4417 never arrived.", upto=1)
    await harness.publish(condensed, harness.settings.topics.chat_inbound)
    await harness.answer(sid, "u2", "Yes, a replacement is on its way." + " " * 70)
    turn = await harness.say(sid, "u3", "Thanks!")
    assert turn["summary"] == "User: order 4417 never arrived."
    assert [t["content"][:8] for t in turn["condense"]] == ["I am sor"]  # only what is new to condense
    assert turn["condense_upto"] == 2

    # A stale or redelivered summary never moves memory backwards.
    stale = MemoryCondensed(session_id=sid, summary="stale", upto=0)
    await harness.publish(stale, harness.settings.topics.chat_inbound)
    memory = await harness.store.memory(sid, 5)
    assert (memory.summary, memory.summary_upto) == ("User: order 4417 never arrived.", 1)
    raw = await harness.store.redis.hget(harness.store.keys(sid).meta, "summary")
    assert b"4417" not in raw  # encrypted at rest, like the history
