"""WebSocket turns are timed like REST and SSE ones: to the first delta and
the reply; one never answered is a timeout within the sweep, not whenever
the next message comes; a message that was never published is no turn."""

import asyncio

from prometheus_client import CollectorRegistry

from supportdesk_contracts.frames import AckFrame, DeltaFrame, ReplyFrame
from supportdesk_gateway.hub import Hub
from supportdesk_gateway.metrics import GatewayMetrics
from supportdesk_gateway.timing import SocketTurns


def turns(timeout: float = 30, capacity: int = 100) -> tuple[SocketTurns, CollectorRegistry]:
    registry = CollectorRegistry()
    return SocketTurns(GatewayMetrics(registry, Hub()), timeout, capacity), registry


def count(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, {"channel": "ws", **labels}) or 0.0


def reply(message_id: str) -> ReplyFrame:
    return ReplyFrame(reply_to=message_id, message_id="r", content="hi", confidence=1, escalated=False, seq=2)


async def test_a_turn_is_timed_to_its_first_delta_and_its_reply() -> None:
    timing, registry = turns()
    timing.started("s", "m1")
    await asyncio.sleep(0.05)
    timing.seen("s", DeltaFrame(reply_to="m1", index=0, content="Hel"))
    timing.seen("s", DeltaFrame(reply_to="m1", index=1, content="lo"))
    await asyncio.sleep(0.05)
    timing.seen("s", reply("m1"))
    assert count(registry, "supportdesk_gateway_first_delta_seconds_count") == 1
    first = count(registry, "supportdesk_gateway_first_delta_seconds_sum")
    whole = count(registry, "supportdesk_gateway_turn_seconds_sum", outcome="reply")
    assert 0.05 <= first < whole
    timing.seen("s", reply("m1"))  # the other replicas' copy, or a resend: counted once
    assert count(registry, "supportdesk_gateway_turn_seconds_count", outcome="reply") == 1
    assert len(timing) == 0


async def test_an_unanswered_turn_is_a_timeout_at_the_next_sweep() -> None:
    timing, registry = turns(timeout=0.05)
    timing.started("s", "m1")
    await timing.expire()
    assert len(timing) == 1
    await asyncio.sleep(0.06)
    await timing.expire()  # no other message needed
    assert count(registry, "supportdesk_gateway_turn_seconds_count", outcome="timeout") == 1
    assert len(timing) == 0


def test_a_handoff_ends_the_turn_and_an_unpublished_message_is_no_turn() -> None:
    timing, registry = turns()
    timing.started("s", "m1")
    timing.seen("s", AckFrame(message_id="m1", seq=1, handoff="awaiting_human"))
    assert count(registry, "supportdesk_gateway_turn_seconds_count", outcome="human") == 1
    timing.started("s", "m2")
    timing.discard("s", "m2")
    assert len(timing) == 0


def test_past_its_capacity_the_oldest_turn_is_forgotten_uncounted() -> None:
    timing, registry = turns(capacity=2)
    for message in ("m1", "m2", "m3"):
        timing.started("s", message)
    assert len(timing) == 2
    assert count(registry, "supportdesk_gateway_turn_seconds_count", outcome="timeout") == 0
