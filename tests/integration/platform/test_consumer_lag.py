"""Consumer lag on the real broker: the figure is the backlog a group has
not committed, exactly, over the partitions this process holds; it follows
commits, and new events once a fetch has seen them; a running service
refreshes it in the background and serves it on /metrics."""

import asyncio
import contextlib
from collections.abc import Callable

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from pydantic import TypeAdapter

from supportdesk_platform.kafka import DeadLetters, KafkaTopicProvisioner, subscribe_events
from supportdesk_platform.lag import ConsumerLag
from supportdesk_platform.lifecycle import Component, Service
from supportdesk_platform.ops import Health, ops_app
from supportdesk_platform.settings import ServiceSettings

pytestmark = pytest.mark.integration

LAG = "supportdesk_consumer_lag_messages"


async def produce(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    """`counts[p]` events on partition p."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, count in counts.items():
            for i in range(count):
                await producer.send_and_wait(topic, str(i).encode(), partition=partition)
    finally:
        await producer.stop()


async def eventually(read: Callable[[], float | None], expected: float, seconds: float = 20) -> None:
    async with asyncio.timeout(seconds):
        while read() != expected:
            await asyncio.sleep(0.1)


async def test_the_lag_is_the_uncommitted_backlog_and_follows_commits_and_fetches(
    kafka_bootstrap: str, unique: str
) -> None:
    topic, group = f"{unique}.orders", f"{unique}-billing"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 2, 1)])
    await admin.close()
    await produce(kafka_bootstrap, topic, {0: 20, 1: 17})  # a backlog of 37
    first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    registry = CollectorRegistry()
    lag = ConsumerLag(registry, lambda: [(group, consumer)], interval_seconds=0.1)

    def figure() -> float | None:
        return registry.get_sample_value(LAG, {"topic": topic, "group": group})

    async def lag_now() -> float | None:
        await lag.refresh()
        return figure()

    try:
        # Fetched (so the high-water marks are known), nothing committed: the
        # whole backlog, counted from the log's first offset.
        async with asyncio.timeout(20):
            fetched = 0
            while fetched < 37:
                fetched += sum(len(r) for r in (await consumer.getmany(timeout_ms=500)).values())
        assert await lag_now() == 37

        await consumer.commit({first: 10})
        assert await lag_now() == 27  # 10 left on partition 0, 17 on partition 1
        await consumer.commit({second: 17})
        assert await lag_now() == 10
        await consumer.commit({first: 20})
        assert await lag_now() == 0

        # New events count once a fetch has seen them (no ListOffsets asked).
        await produce(kafka_bootstrap, topic, {1: 5})
        async with asyncio.timeout(20):
            while consumer.highwater(second) != 22:
                await consumer.getmany(timeout_ms=500)
        assert await lag_now() == 5

        # The background pass keeps the figure current without being asked.
        await lag.start()
        await consumer.commit({second: 20})
        await eventually(figure, 2)
    finally:
        await lag.stop()
        await consumer.stop()


async def test_a_running_service_reports_the_lag_of_its_groups_on_metrics(kafka_bootstrap: str, unique: str) -> None:
    """Through a real Service and the workers' own subscriber (a commit
    after each handled event): its consumer is found and measured in the
    background, a subscriber without a group is left out; the handler holds
    every event it is not let through, so the committed offset is known at
    each step."""
    settings = ServiceSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=unique,
        kafka_partitions=1,
        kafka_fetch_max_wait_ms=50,
    )
    topic, group = settings.topics.chat_inbound, f"{unique}-lagging"
    let_through = asyncio.Semaphore(0)
    router = KafkaRouter()

    async def slow(event: int) -> None:
        await let_through.acquire()

    subscribe_events(
        router,
        settings,
        topic=topic,
        group_id=group,
        title="lagging",
        adapter=TypeAdapter(int),
        dead_letters=DeadLetters(router.publisher(settings.topics.dead_letters), "lagging"),
        handler=slow,
    )

    @router.subscriber(settings.topics.chat_outbound)  # like the gateway's relay: no group, no lag
    async def relay(message: bytes) -> None:
        return None

    # The backlog is there before the group's first fetch: a partition with
    # fetched events not yet handled is not fetched again (lag.py), so events
    # produced while the handler holds the first would not all be seen.
    await KafkaTopicProvisioner(settings).ensure(settings.topics.all())
    await produce(kafka_bootstrap, topic, {0: 37})
    health = Health("lagging")
    service = Service("lagging", settings, health, [Component("lagging", router=router)])
    await service.start()
    transport = httpx.ASGITransport(app=ops_app(health))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://ops") as ops:

            async def scrape_until(value: float) -> None:
                seen: list[tuple[dict[str, str], float]] = []
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(30):  # a pass every few seconds
                        while seen != [({"topic": topic, "group": group}, value)]:
                            await asyncio.sleep(0.2)
                            families = text_string_to_metric_families((await ops.get("/metrics")).text)
                            [family] = [f for f in families if f.name == LAG]
                            seen = [(s.labels, s.value) for s in family.samples]
                assert seen == [({"topic": topic, "group": group}, value)]

            # The first event is being handled, none committed: the whole backlog.
            await scrape_until(37)
            for _ in range(10):
                let_through.release()
            await scrape_until(27)
    finally:
        for _ in range(100):
            let_through.release()
        await service.stop()
