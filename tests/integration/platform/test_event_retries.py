"""A dependency outage on the real broker: the event is retried with backoff
and handled once the dependency is back; one whose dependency stays down
(Redis out of memory, Qdrant unreachable, a dropped connection) is
dead-lettered with its attempt count after the policy's attempts, whoever
waits is told, and the partition moves on. For both kinds of subscriber."""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, TypeAdapter
from redis.exceptions import OutOfMemoryError

from supportdesk_knowledge.index import IndexOutage
from supportdesk_platform.kafka import (
    DeadLetters,
    KafkaTopicProvisioner,
    RetryPolicy,
    subscribe_events,
    subscribe_keyed,
)
from supportdesk_platform.settings import ServiceSettings

pytestmark = pytest.mark.integration

POLICY = RetryPolicy(attempts=3, initial_seconds=0.05, max_seconds=0.1)
OUTAGES = [OutOfMemoryError("OOM command not allowed"), IndexOutage("Qdrant unreachable"), ConnectionResetError()]


class Job(BaseModel):
    name: str


class Worker:
    """A subscriber whose handler fails as told, and what became of each job."""

    def __init__(self, failures: dict[str, list[BaseException]]) -> None:
        self.failures = failures
        self.done: list[str] = []
        self.given_up: list[tuple[str, str]] = []
        self.dead: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def handle(self, job: Job) -> None:
        if self.failures.get(job.name):
            raise self.failures[job.name].pop(0)
        self.done.append(job.name)

    async def report(self, job: Any, reason: str) -> None:
        self.given_up.append((job.name, reason))


Subscribe = Callable[[KafkaRouter, ServiceSettings, str, DeadLetters, Worker], None]


def plain(router: KafkaRouter, settings: ServiceSettings, topic: str, dead: DeadLetters, worker: Worker) -> None:
    subscribe_events(
        router,
        settings,
        topic=topic,
        group_id=f"{topic}-g",
        title="t",
        adapter=TypeAdapter(Job),
        dead_letters=dead,
        handler=worker.handle,
    )


def keyed(router: KafkaRouter, settings: ServiceSettings, topic: str, dead: DeadLetters, worker: Worker) -> None:
    subscribe_keyed(
        router,
        settings,
        topic=topic,
        group_id=f"{topic}-g",
        title="t",
        adapter=TypeAdapter(Job),
        dead_letters=dead,
        handler=worker.handle,
        max_in_flight=4,
    )


async def run(
    kafka_bootstrap: str, unique: str, subscribe: Subscribe, worker: Worker, names: list[str]
) -> list[dict[str, Any]]:
    """Publishes `names` as jobs and runs the subscriber until each is done or
    given up; returns the dead letters."""
    settings = ServiceSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=unique, kafka_partitions=1)
    topic, dead_topic = f"{unique}.jobs", f"{unique}.dead"
    await KafkaTopicProvisioner(settings).ensure([topic, dead_topic])
    broker = KafkaBroker(kafka_bootstrap)
    router = KafkaRouter()
    subscribe(router, settings, topic, DeadLetters(router.publisher(dead_topic), "test", POLICY, worker.report), worker)
    broker.include_router(router)

    @broker.subscriber(dead_topic, group_id=f"{unique}-probe", auto_offset_reset="earliest", fetch_max_wait_ms=5)
    async def on_dead(message: KafkaMessage) -> None:
        await worker.dead.put(json.loads(message.body))

    await broker.start()
    try:
        for name in names:
            await broker.publish(Job(name=name), topic, key=b"one-key")  # one partition, one lane: in order
        async with asyncio.timeout(60):
            while len(worker.done) + len(worker.given_up) < len(names):
                await asyncio.sleep(0.05)
            dead = [await worker.dead.get() for _ in worker.given_up]
        await asyncio.sleep(0.2)  # nothing more arrives
        return dead + [worker.dead.get_nowait() for _ in range(worker.dead.qsize())]
    finally:
        await broker.stop()


@pytest.mark.parametrize("subscribe", [plain, keyed])
@pytest.mark.parametrize("outage", OUTAGES, ids=lambda e: type(e).__name__)
async def test_a_short_outage_is_ridden_out(
    kafka_bootstrap: str, unique: str, subscribe: Subscribe, outage: BaseException
) -> None:
    worker = Worker({"first": [outage, outage]})  # fails twice, the third attempt works
    dead = await run(kafka_bootstrap, unique, subscribe, worker, ["first", "second"])
    assert worker.done == ["first", "second"]
    assert (worker.given_up, dead) == ([], [])


@pytest.mark.parametrize("subscribe", [plain, keyed])
@pytest.mark.parametrize("outage", OUTAGES, ids=lambda e: type(e).__name__)
async def test_a_lasting_outage_is_dead_lettered_with_its_attempts_and_the_partition_moves_on(
    kafka_bootstrap: str, unique: str, subscribe: Subscribe, outage: BaseException
) -> None:
    worker = Worker({"first": [outage] * 10})
    [dead] = await run(kafka_bootstrap, unique, subscribe, worker, ["first", "second"])
    assert worker.done == ["second"]
    [(name, reason)] = worker.given_up
    assert name == "first"
    assert reason.startswith("a dependency stayed unavailable after 3 attempts:")
    assert (dead["attempts"], dead["reason"], json.loads(dead["payload"])) == (3, reason, {"name": "first"})
    assert len(worker.failures["first"]) == 10 - 3  # tried exactly three times
