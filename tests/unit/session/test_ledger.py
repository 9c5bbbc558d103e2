"""The session worker's handlers on FastStream's in-memory broker, with the
real session store on the test Redis."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import TypeAdapter
from redis.asyncio import Redis

from builders import BothOwners, session_store
from supportdesk_contracts.events import MessageReceived, OutboundEvent, Reply, ReplyCompleted, Source
from supportdesk_contracts.frames import frame_of
from supportdesk_session.handlers import InboundRouter, build_router
from supportdesk_session.settings import SessionWorkerSettings
from supportdesk_session.unclaimed import UnclaimedHandoffs

OUTBOUND = TypeAdapter[OutboundEvent](OutboundEvent)


class Harness:
    def __init__(
        self, settings: SessionWorkerSettings, store: BothOwners, broker: KafkaBroker, inbound: InboundRouter
    ) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker
        self.inbound = inbound
        self.seen: dict[str, list[dict[str, Any]]] = {"outbound": [], "turns": [], "dead": [], "escalations": []}

    async def publish(self, event: Any, topic: str, key: bytes | None = None) -> None:
        """Publishes and waits until the worker has handled it: its events
        are handled in per-session lanes, after the publish returns."""
        await self.broker.publish(event, topic, key=key)
        await self.inbound.dispatcher.idle()

    def of_type(self, topic: str, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.seen[topic] if e.get("event_type") == event_type]


@pytest.fixture
async def harness(redis: Redis, unique: str) -> AsyncIterator[Harness]:
    settings = SessionWorkerSettings(
        kafka_topic_prefix=unique, redis_key_prefix=unique, event_retry_initial_seconds=0.01
    )
    store = session_store(redis, unique)
    broker = KafkaBroker()
    inbound = build_router(settings, store)
    broker.include_router(inbound.router)
    h = Harness(settings, store, broker, inbound)
    topics = settings.topics
    for name, topic in [
        ("outbound", topics.chat_outbound),
        ("turns", topics.agent_turns),
        ("dead", topics.dead_letters),
        ("escalations", topics.escalations),
    ]:

        def collector(name: str) -> Any:
            async def collect(message: KafkaMessage) -> None:
                h.seen[name].append(json.loads(message.body))

            return collect

        broker.subscriber(topic)(collector(name))
    async with TestKafkaBroker(broker):
        yield h


def received(session_id: str, message_id: str, content: str = "How long does shipping take?") -> MessageReceived:
    return MessageReceived(session_id=session_id, message_id=message_id, content=content, channel="ws", gateway_id="g1")


async def test_a_message_is_recorded_acked_and_handed_to_the_agent(harness: Harness) -> None:
    record, _ = await harness.store.create(None)
    await harness.publish(received(record.session_id, "m1"), harness.settings.topics.chat_inbound)
    [ack] = harness.of_type("outbound", "message.accepted")
    assert (ack["message_id"], ack["seq"], ack["duplicate"]) == ("m1", 1, False)
    [turn] = harness.seen["turns"]
    assert turn["content"] == "How long does shipping take?"
    assert turn["history"] == []
    assert [m["content"] for m in await harness.store.history(record.session_id)] == ["How long does shipping take?"]


async def test_a_message_id_sent_twice_is_recorded_and_answered_once(harness: Harness) -> None:
    record, _ = await harness.store.create(None)
    sid, inbound = record.session_id, harness.settings.topics.chat_inbound
    await harness.publish(received(sid, "m1"), inbound)
    reply = Reply(id="r1", content="3-5 days.", confidence=0.8)
    await harness.publish(ReplyCompleted(session_id=sid, reply_to="m1", reply=reply), inbound)
    await harness.publish(received(sid, "m1"), inbound)  # the client retried

    acks = harness.of_type("outbound", "message.accepted")
    assert [(a["seq"], a["duplicate"]) for a in acks] == [(1, False), (1, True)]
    replies = harness.of_type("outbound", "reply.recorded")
    assert [(r["seq"], r["reply"]["content"]) for r in replies] == [(2, "3-5 days."), (2, "3-5 days.")]
    assert len(harness.seen["turns"]) == 1, "an answered message must not reach the agent again"
    assert len(await harness.store.history(sid)) == 2


async def test_history_reaches_the_agent_as_memory(harness: Harness) -> None:
    record, _ = await harness.store.create(None)
    sid, inbound = record.session_id, harness.settings.topics.chat_inbound
    await harness.publish(received(sid, "m1", "Shipping time?"), inbound)
    await harness.publish(
        ReplyCompleted(session_id=sid, reply_to="m1", reply=Reply(id="r1", content="3-5 days.", confidence=0.8)),
        inbound,
    )
    await harness.publish(received(sid, "m2", "And express?"), inbound)
    assert [(t["role"], t["content"]) for t in harness.seen["turns"][-1]["history"]] == [
        ("user", "Shipping time?"),
        ("assistant", "3-5 days."),
    ]


async def test_an_escalated_reply_marks_the_session_once(harness: Harness) -> None:
    record, _ = await harness.store.create(None)
    sid, inbound = record.session_id, harness.settings.topics.chat_inbound
    for n in (1, 2):
        await harness.publish(received(sid, f"m{n}", "lawyer!"), inbound)
        reply = Reply(id=f"r{n}", content="Connecting you.", confidence=1.0, escalated=True, sources=[])
        await harness.publish(
            ReplyCompleted(session_id=sid, reply_to=f"m{n}", reply=reply, escalation_reason="keywords: lawyer"),
            inbound,
        )
    assert len(harness.seen["escalations"]) == 1
    assert len(harness.of_type("outbound", "session.escalated")) == 1
    session = await harness.store.get(sid)
    assert session is not None
    assert session.escalated
    assert session.escalation_reason == "keywords: lawyer"


async def test_a_message_for_an_unknown_session_fails_the_turn(harness: Harness) -> None:
    await harness.publish(received("00000000-0000-4000-8000-000000000000", "m1"), harness.settings.topics.chat_inbound)
    [failure] = harness.of_type("outbound", "turn.failed")
    assert failure["code"] == "session_not_found"
    assert harness.seen["turns"] == []


@pytest.mark.parametrize(
    "payload",
    [b"not json", b'{"event_type": "message.received"}', b'{"event_type": "from.the.future", "session_id": "x"}'],
)
async def test_poison_events_go_to_the_dead_letter_topic(harness: Harness, payload: bytes) -> None:
    await harness.publish(payload, harness.settings.topics.chat_inbound, key=b"k")
    [dead] = harness.seen["dead"]
    assert dead["consumer"] == "session"
    assert dead["payload"] == payload.decode()
    assert dead["payload_bytes"] == len(payload)
    assert dead["reason"].startswith("invalid event")


async def test_sources_survive_the_round_trip(harness: Harness) -> None:
    record, _ = await harness.store.create(None)
    sid, inbound = record.session_id, harness.settings.topics.chat_inbound
    await harness.publish(received(sid, "m1"), inbound)
    source = Source(document_id="d1", title="Shipping", snippet="3-5 days", score=0.7)
    reply = Reply(id="r1", content="3-5 days.", confidence=0.7, sources=[source])
    await harness.publish(ReplyCompleted(session_id=sid, reply_to="m1", reply=reply), inbound)
    [recorded] = harness.of_type("outbound", "reply.recorded")
    assert recorded["reply"]["sources"][0]["title"] == "Shipping"
    history = await harness.store.history(sid)
    assert history[1]["sources"][0]["document_id"] == "d1"
    assert json.dumps(history)  # stored history is plain JSON after decryption


async def test_replayed_frames_equal_the_live_ones_field_by_field(harness: Harness) -> None:
    """What a resuming client gets from the frame log is exactly what a
    connected client got live, for every frame type that is logged."""
    record, _ = await harness.store.create(None)
    sid, inbound = record.session_id, harness.settings.topics.chat_inbound
    await harness.publish(received(sid, "m1", "I will sue you"), inbound)
    source = Source(document_id="d1", title="Shipping", snippet="3-5 days", score=0.7)
    reply = Reply(id="r1", content="Connecting you.", confidence=0.7, sources=[source], escalated=True)
    await harness.publish(
        ReplyCompleted(session_id=sid, reply_to="m1", reply=reply, escalation_reason="keywords: sue"), inbound
    )
    live = [frame_of(OUTBOUND.validate_python(e)) for e in harness.seen["outbound"]]
    replayed = await harness.store.frames_after(sid, 0)
    assert [f.type for f in live] == ["ack", "reply", "escalated"]
    assert [f.model_dump() for f in replayed] == [f.model_dump() for f in live]
    # And as the client reads them: the same JSON text.
    assert [f.model_dump_json() for f in replayed] == [f.model_dump_json() for f in live]


async def escalate(harness: Harness, sid: str, message_id: str = "m1") -> None:
    inbound = harness.settings.topics.chat_inbound
    await harness.publish(received(sid, message_id, "I want a human"), inbound)
    reply = Reply(id=f"r-{message_id}", content="Someone will reply here.", confidence=1.0, escalated=True)
    await harness.publish(
        ReplyCompleted(session_id=sid, reply_to=message_id, reply=reply, escalation_reason="asked for a human"),
        inbound,
    )


async def test_while_a_human_is_awaited_messages_are_recorded_and_the_bot_is_not_asked(harness: Harness) -> None:
    record, _ = await harness.store.create(None)
    sid = record.session_id
    await escalate(harness, sid)
    assert (await harness.store.get(sid)).handoff == "awaiting_human"  # type: ignore[union-attr]
    turns_before = len(harness.seen["turns"])
    await harness.publish(received(sid, "m2", "Hello? Anyone?"), harness.settings.topics.chat_inbound)
    acks = harness.of_type("outbound", "message.accepted")
    assert acks[-1]["message_id"] == "m2"
    assert len(harness.seen["turns"]) == turns_before, "the bot stays silent"
    assert [m["content"] for m in await harness.store.history(sid)][-1] == "Hello? Anyone?"


async def test_a_bot_reply_whose_turn_began_before_the_takeover_is_fenced_off(harness: Harness) -> None:
    # The race: the turn is asked for, a human claims the session while the
    # bot is still generating, then the bot's reply arrives.
    record, _ = await harness.store.create(None)
    sid, inbound = record.session_id, harness.settings.topics.chat_inbound
    await harness.publish(received(sid, "m1", "Where is my order?"), inbound)
    assert [t["message_id"] for t in harness.seen["turns"]] == ["m1"]
    await harness.store.record_status(sid, "claim-1", "with_human", "Alex joined.", "alex", ("bot", "awaiting_human"))
    late = Reply(id="r1", content="It ships today.", confidence=0.9)
    await harness.publish(ReplyCompleted(session_id=sid, reply_to="m1", reply=late), inbound)
    assert harness.of_type("outbound", "reply.recorded") == []
    assert [m["role"] for m in await harness.store.history(sid)] == ["user"]
    # Handed back: a reply to a turn from before the hand-back stays fenced;
    # a new turn is answered.
    await harness.store.record_status(sid, "back-1", "bot", "Bot again.", "alex", ("with_human",))
    await harness.publish(ReplyCompleted(session_id=sid, reply_to="m1", reply=late), inbound)
    assert harness.of_type("outbound", "reply.recorded") == []
    await harness.publish(received(sid, "m2", "And returns?"), inbound)
    fresh = Reply(id="r2", content="30 days.", confidence=0.9)
    await harness.publish(ReplyCompleted(session_id=sid, reply_to="m2", reply=fresh), inbound)
    [recorded] = harness.of_type("outbound", "reply.recorded")
    assert recorded["reply"]["content"] == "30 days."


async def test_an_escalation_whose_announcement_did_not_complete_is_announced_when_redelivered(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: recorded first, and a redelivery found it "not new" and never
    # announced it, so no operator ever heard of the escalation.
    record, _ = await harness.store.create(None)
    sid = record.session_id
    announce = harness.store.mark_announced
    failures = iter([ConnectionError("broker down")])

    async def flaky(session_id: str, seq: int) -> None:
        for failure in failures:
            raise failure
        await announce(session_id, seq)

    monkeypatch.setattr(harness.store, "mark_announced", flaky)
    await escalate(harness, sid)  # marking it announced fails once: the worker tries the event again
    await escalate(harness, sid)  # a redelivery: already announced
    assert len(harness.seen["escalations"]) == 2  # the first try, then its retry: one escalation, seq-deduplicated
    assert {e["seq"] for e in harness.seen["escalations"]} == {harness.seen["escalations"][0]["seq"]}


async def test_a_handoff_nobody_claims_goes_back_to_the_bot_and_the_user_is_told(harness: Harness) -> None:
    topics = harness.settings.topics
    sweeper = UnclaimedHandoffs(
        harness.store,
        harness.broker.publisher(topics.chat_outbound),
        harness.broker.publisher(topics.escalations),
        timeout_seconds=0.01,
        interval_seconds=60,
    )
    waiting, _ = await harness.store.create(None)
    claimed, _ = await harness.store.create(None)
    for record in (waiting, claimed):
        await escalate(harness, record.session_id)
    await harness.store.record_status(claimed.session_id, "c1", "with_human", "Sam joined.", "sam", ("awaiting_human",))
    await asyncio.sleep(0.05)
    assert await sweeper.sweep() == 1
    assert await sweeper.sweep() == 0  # once
    [told] = harness.of_type("outbound", "session.status")
    assert (told["session_id"], told["status"]) == (waiting.session_id, "bot")
    assert "nobody" in told["message"]
    assert (await harness.store.get(waiting.session_id)).handoff == "bot"  # type: ignore[union-attr]
    assert (await harness.store.get(claimed.session_id)).handoff == "with_human"  # type: ignore[union-attr]
    # The bot answers the next message.
    turns = len(harness.seen["turns"])
    await harness.publish(received(waiting.session_id, "m9", "ok, and shipping?"), topics.chat_inbound)
    assert len(harness.seen["turns"]) == turns + 1


async def test_sessions_are_handled_side_by_side_each_in_its_order(harness: Harness) -> None:
    """Keyed by session (as every producer keys them), events of different
    sessions run in lanes of their own; one session's are recorded in the
    order they came."""
    sessions = [(await harness.store.create(None))[0].session_id for _ in range(3)]
    for n in range(4):
        for sid in sessions:
            await harness.broker.publish(
                received(sid, f"m{n}", f"question {n}"), harness.settings.topics.chat_inbound, key=sid.encode()
            )
    await harness.inbound.dispatcher.idle()
    for sid in sessions:
        acks = [a for a in harness.of_type("outbound", "message.accepted") if a["session_id"] == sid]
        assert [(a["message_id"], a["seq"]) for a in acks] == [("m0", 1), ("m1", 2), ("m2", 3), ("m3", 4)]
        history = await harness.store.history(sid)
        assert [m["content"] for m in history] == [f"question {n}" for n in range(4)]
