"""The keyed dispatcher: one key's messages in order, different keys at once,
and offsets committed only past what has finished (never past a message that
is still running or was abandoned)."""

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

from aiokafka import TopicPartition
from faststream.kafka.annotations import KafkaMessage
from opentelemetry import context as trace_context

from supportdesk_platform.dispatch import KeyedDispatcher, Watermark

TP = TopicPartition("turns", 0)


@dataclass
class Committer:
    commits: list[int] = field(default_factory=list)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await asyncio.sleep(0)
        self.commits.append(offsets[TP])


@dataclass
class Raw:
    key: bytes
    offset: int
    topic: str = "turns"
    partition: int = 0


@dataclass
class Message:
    raw_message: Raw
    consumer: Committer


class Work:
    """Each message waits for its own gate, so a test decides what finishes when."""

    def __init__(self) -> None:
        self.gates: dict[int, asyncio.Event] = {}
        self.started: list[int] = []
        self.done: list[int] = []

    def gate(self, offset: int) -> asyncio.Event:
        return self.gates.setdefault(offset, asyncio.Event())

    async def __call__(self, message: Any) -> None:
        offset = message.raw_message.offset
        self.started.append(offset)
        await self.gate(offset).wait()
        self.done.append(offset)


def messages(committer: Committer, *keys: str) -> list[KafkaMessage]:
    return [cast(KafkaMessage, Message(Raw(k.encode(), offset), committer)) for offset, k in enumerate(keys)]


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_the_watermark_moves_only_over_a_finished_prefix() -> None:
    mark = Watermark()
    for offset in (10, 11, 12):
        mark.fetched(offset)
    mark.finished(12)
    assert mark.due() is None
    mark.finished(10)
    assert mark.due() == 11
    mark.committed = 11
    mark.finished(11)
    assert mark.due() == 13
    mark.finished(99)  # never fetched here (before a rebalance): ignored
    assert mark.due() == 13


async def test_one_key_in_order_other_keys_at_once_and_commits_behind_the_slowest() -> None:
    work, committer = Work(), Committer()
    dispatcher = KeyedDispatcher(work, max_in_flight=8)
    for message in messages(committer, "a", "b", "a", "c"):
        await dispatcher.submit(message)
    await settle()
    assert sorted(work.started) == [0, 1, 3]  # a's second message waits for its first
    work.gate(1).set()
    work.gate(3).set()
    await settle()
    assert committer.commits == []  # offset 0 still runs: nothing may be committed past it
    work.gate(0).set()
    await settle()
    assert 2 in work.started
    assert committer.commits[-1] == 2  # 0, 1 done; 2 runs
    work.gate(2).set()
    await settle()
    assert committer.commits[-1] == 4
    assert committer.commits == sorted(committer.commits)
    assert dispatcher.in_flight == 0


async def test_a_full_dispatcher_holds_the_consumer_back() -> None:
    work, committer = Work(), Committer()
    dispatcher = KeyedDispatcher(work, max_in_flight=2)
    first, second, third = messages(committer, "a", "b", "c")
    await dispatcher.submit(first)
    await dispatcher.submit(second)
    blocked = asyncio.create_task(dispatcher.submit(third))
    await settle()
    assert not blocked.done()
    work.gate(0).set()
    await asyncio.wait_for(blocked, 1)
    await settle()
    assert 2 in work.started


async def test_a_busy_key_is_told_about_the_newer_message() -> None:
    work, committer = Work(), Committer()
    queued: list[bytes | None] = []
    dispatcher = KeyedDispatcher(work, max_in_flight=8, on_queued=queued.append)
    first, other, newer = messages(committer, "a", "b", "a")
    await dispatcher.submit(first)
    await dispatcher.submit(other)
    assert queued == []
    await dispatcher.submit(newer)
    assert queued == [b"a"]
    assert dispatcher.waiting(b"a") == 1
    assert dispatcher.waiting(b"b") == 0


async def test_drain_finishes_what_it_can_and_leaves_the_rest_uncommitted() -> None:
    work, committer = Work(), Committer()
    dispatcher = KeyedDispatcher(work, max_in_flight=8)
    quick, stuck = messages(committer, "a", "b")
    await dispatcher.submit(quick)
    await dispatcher.submit(stuck)
    work.gate(0).set()
    await dispatcher.drain(within_seconds=0.2)
    assert work.done == [0]
    assert committer.commits == [1]  # offset 1 never finished: redelivered to the next owner
    late = messages(committer, "c", "c", "c")[2]
    await dispatcher.submit(late)  # taken after the drain began: left for the next owner
    await settle()
    assert 2 not in work.started


async def test_work_that_gives_up_while_draining_commits_nothing_of_its_lane() -> None:
    """An outage during the drain: the message is not handled, so neither it
    nor the one queued behind it in its lane may be committed (before, the
    dispatcher took its return for success and committed both)."""
    committer = Committer()
    handled: list[int] = []

    async def gives_up(message: Any) -> None:
        if message.raw_message.offset == 1:
            await asyncio.sleep(0.05)
            raise ConnectionError("still down, and draining")
        handled.append(message.raw_message.offset)

    dispatcher = KeyedDispatcher(gives_up, max_in_flight=8)
    first, head, behind = messages(committer, "a", "b", "b")
    for message in (first, head, behind):
        await dispatcher.submit(message)
    await dispatcher.drain(within_seconds=2)
    assert handled == [0]
    assert committer.commits == [1]  # past offset 0 only: 1 and 2 are redelivered
    assert dispatcher.in_flight == 0


async def test_each_message_is_handled_in_the_trace_context_it_was_consumed_in() -> None:
    """A lane handles its messages in one task, later: each must run under the
    context of its own consume (its trace), not the lane's first message's."""
    seen: list[object] = []

    async def work(message: Any) -> None:
        seen.append(trace_context.get_value("consumed"))

    dispatcher = KeyedDispatcher(work, max_in_flight=8)
    committer = Committer()
    for message, consumed in zip(messages(committer, "a", "a", "b"), ("first", "second", "third"), strict=True):
        token = trace_context.attach(trace_context.set_value("consumed", consumed))
        try:
            await dispatcher.submit(message)
        finally:
            trace_context.detach(token)
    await settle()
    assert seen == ["first", "third", "second"] or sorted(map(str, seen)) == ["first", "second", "third"]
    assert seen.index("first") < seen.index("second")
