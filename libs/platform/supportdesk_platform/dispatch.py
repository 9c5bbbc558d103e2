"""Concurrent consumption that keeps each key's order and at-least-once delivery.

One consumer of a group hands every message to a *lane* named by its Kafka key
(the session id): messages of one key are handled one after another, in the
order they were fetched; different keys run at once, up to `max_in_flight`.
A slow turn of one session so holds up no other, not even one on the same
partition.

Offsets are committed by hand, per partition, one past the longest finished
prefix of what was fetched (a watermark): offset 7 finishing before offset 5
commits nothing, so a crash redelivers 5, 6 and 7, never skips 5. Redelivered
work is harmless downstream (every record is idempotent on its id).

Why not FastStream's `max_workers`: it runs one consumer per worker in the
process, parallel per partition only, and aiokafka leaves a group-coordinator
connection open when several consumers of one process leave the group at once.
"""

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.message import FakeConsumer
from opentelemetry import context as trace_context
from opentelemetry.context import Context

from supportdesk_platform.telemetry import tracer

log = logging.getLogger(__name__)

Work = Callable[[KafkaMessage], Awaitable[None]]
Key = bytes | None


class Watermark:
    """The offsets of one partition in the order they were fetched; what may be
    committed is one past the longest prefix of them that has finished."""

    def __init__(self) -> None:
        self._offsets: OrderedDict[int, bool] = OrderedDict()
        self.committable: int | None = None
        self.committed: int | None = None

    def fetched(self, offset: int) -> None:
        self._offsets[offset] = False

    def finished(self, offset: int) -> None:
        if offset not in self._offsets:
            return  # fetched before a rebalance forgot this partition
        self._offsets[offset] = True
        while self._offsets:
            first, done = next(iter(self._offsets.items()))
            if not done:
                break
            self._offsets.popitem(last=False)
            self.committable = first + 1

    @property
    def in_flight(self) -> int:
        return sum(1 for done in self._offsets.values() if not done)

    def due(self) -> int | None:
        """The offset to commit now, if it moved since the last commit."""
        if self.committable is None or self.committable == self.committed:
            return None
        return self.committable


@dataclass(frozen=True)
class Taken:
    """A message and the trace context it was consumed in: a lane handles it
    later, in a task of its own, so its spans must be told their parent."""

    message: KafkaMessage
    trace: Context


@dataclass
class Lane:
    """What one key has waiting, oldest first; the head is being handled."""

    messages: deque[Taken]
    task: "asyncio.Task[None] | None" = None


def _partition_of(message: KafkaMessage) -> TopicPartition:
    raw = message.raw_message
    return TopicPartition(raw.topic, raw.partition)  # type: ignore[union-attr]


class KeyedDispatcher:
    """Hands messages to per-key lanes and commits what has finished.

    `submit` is the subscriber's handler: it returns as soon as the message is
    queued, and waits while `max_in_flight` messages are already taken (the
    back-pressure that keeps the consumer from fetching without bound).
    `on_queued(key)` is told when a message joins a lane that is busy: a newer
    message for a key being handled (a user double-texting).
    """

    def __init__(
        self,
        work: Work,
        *,
        max_in_flight: int,
        on_queued: Callable[[Key], None] | None = None,
        name: str = "dispatcher",
    ) -> None:
        self.work = work
        self.on_queued = on_queued
        self.name = name
        self.max_in_flight = max_in_flight
        self._slots = asyncio.Semaphore(max_in_flight)
        self._lanes: dict[Key, Lane] = {}
        self._marks: dict[TopicPartition, Watermark] = {}
        self._commit = asyncio.Lock()
        self._idle = asyncio.Event()
        self._idle.set()
        self._progress = asyncio.Event()  # set whenever a message finishes
        self._taken = 0
        self.closing = False

    @property
    def in_flight(self) -> int:
        """Messages taken and not finished (handled now or waiting in a lane)."""
        return self._taken

    async def idle(self) -> None:
        """Until nothing taken is unfinished (tests on the in-memory broker)."""
        await self._idle.wait()

    def waiting(self, key: Key) -> int:
        """Messages of `key` queued behind the one being handled."""
        lane = self._lanes.get(key)
        return len(lane.messages) - 1 if lane is not None else 0

    async def submit(self, message: KafkaMessage) -> None:
        if self.closing:
            return  # left uncommitted: the partition's next owner handles it
        await self._slots.acquire()
        if self.closing:
            self._slots.release()
            return
        self._taken += 1
        self._idle.clear()
        self._marks.setdefault(_partition_of(message), Watermark()).fetched(message.raw_message.offset)  # type: ignore[union-attr]
        key: Key = message.raw_message.key  # type: ignore[union-attr]
        taken = Taken(message, trace_context.get_current())
        lane = self._lanes.get(key)
        if lane is not None:
            lane.messages.append(taken)
            if self.on_queued is not None:
                self.on_queued(key)
            return
        lane = self._lanes[key] = Lane(deque([taken]))
        lane.task = asyncio.create_task(self._run(key, lane), name=f"{self.name}:lane")

    async def _run(self, key: Key, lane: Lane) -> None:
        # The lane's task was made while its first message was consumed: what
        # it does between messages (commits, their logs) is of no one trace.
        base = trace_context.attach(Context())
        try:
            while lane.messages:
                taken = lane.messages[0]
                message = taken.message
                token = trace_context.attach(taken.trace)
                try:
                    with tracer.start_as_current_span(f"handle {message.raw_message.topic}"):  # type: ignore[union-attr]
                        await self.work(message)
                except Exception:  # the work gave up on it, whatever the error
                    # Not handled (an outage while draining): neither it nor
                    # what waits behind it is committed, so all are redelivered.
                    log.warning("message left unhandled; it will be redelivered", exc_info=True)
                    return
                finally:
                    trace_context.detach(token)
                lane.messages.popleft()
                self._release()
                await self._finished(message)
        finally:
            # Cancelled by `drain`: what is left stays uncommitted (redelivered).
            for _ in lane.messages:
                self._release()
            del self._lanes[key]
            trace_context.detach(base)

    def _release(self) -> None:
        self._taken -= 1
        self._slots.release()
        if self._taken == 0:
            self._idle.set()

    async def _finished(self, message: KafkaMessage) -> None:
        partition = _partition_of(message)
        mark = self._marks.get(partition)
        if mark is None:
            return
        mark.finished(message.raw_message.offset)  # type: ignore[union-attr]
        self._progress.set()
        if isinstance(message.consumer, FakeConsumer):
            return  # FastStream's in-memory test broker: nothing to commit
        consumer = cast(AIOKafkaConsumer, message.consumer)
        # One commit at a time, always the newest watermark: commits of one
        # partition never go backwards, and a burst of finishes makes one commit.
        async with self._commit:
            offset = mark.due()
            if offset is None:
                return
            try:
                await consumer.commit({partition: offset})
                mark.committed = offset
            except KafkaError as exc:
                # The partition moved to another member (a rebalance): it
                # starts from the last commit and redelivers the rest.
                log.warning("offset commit refused", extra={"partition": partition.partition, "error": repr(exc)})

    async def drain(self, within_seconds: float) -> None:
        """Stop taking messages, let what was taken finish within the time,
        then cancel the rest (it stays uncommitted, so it is redelivered)."""
        self.closing = True
        try:
            async with asyncio.timeout(within_seconds):
                await self._idle.wait()
        except TimeoutError:
            log.warning("drain time over; unfinished messages will be redelivered", extra={"left": self._taken})
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def listener(self, wait_seconds: float) -> ConsumerRebalanceListener:
        return _Rebalance(self, wait_seconds)

    async def _settle(self, revoked: set[TopicPartition], wait_seconds: float) -> None:
        """Before partitions go to another member: let their taken messages
        finish (and commit), so the new owner repeats as little as possible."""
        try:
            async with asyncio.timeout(wait_seconds):
                while any(self._marks[p].in_flight for p in revoked if p in self._marks):
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            log.warning("partitions revoked with messages unfinished; the next owner repeats them")
        for partition in revoked:
            self._marks.pop(partition, None)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, dispatcher: KeyedDispatcher, wait_seconds: float) -> None:
        self.dispatcher = dispatcher
        self.wait_seconds = wait_seconds

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.dispatcher._settle(revoked, self.wait_seconds)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # Fetching restarts from the committed offsets: begin with a clean slate.
        for partition in assigned:
            self.dispatcher._marks.pop(partition, None)
