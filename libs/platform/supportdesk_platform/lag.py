"""Consumer lag: how far each consumer group in this process is behind its
topics, as `supportdesk_consumer_lag_messages{topic,group}`.

Per assigned partition, lag is the high-water mark (the next offset to be
written) as this consumer's last fetch saw it, minus the group's committed
offset: the events not yet handled, or handled but not committed (a
redelivery after a crash would repeat those). A partition the group never
committed counts from the log's first offset, where `auto_offset_reset=
"earliest"` starts it. End offsets (ListOffsets "latest") are never asked
for: the local Tansu broker answers them wrongly.

Reading the committed offsets is a broker round trip per partition, so a
scrape never does it: a background pass refreshes a cached figure every
`REFRESH_SECONDS` and the collector reports the cache.

Known limits: the high-water mark only moves when the consumer fetches, and
aiokafka does not fetch a partition again while events it fetched from it
are still waiting to be handled. A handler stuck on one event therefore
shows the backlog as of its last fetch (at least the events fetched and not
committed), not what arrived since: a lag that stops moving matters as much
as one that grows. A group with no member in any process reports nothing
(alert on the series being absent, too).
"""

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import LogicSubscriber
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from supportdesk_platform.periodic import Periodic

REFRESH_SECONDS = 5.0
NAME = "supportdesk_consumer_lag_messages"
DOCUMENTATION = (
    "Events of a topic not yet committed by a consumer group, over the partitions this process is assigned;"
    " refreshed every few seconds."
)

Consumers = Callable[[], Iterable[tuple[str, Any]]]
"""The (group, consumer) pairs to measure now: started aiokafka consumers
with a group. Asked on every pass, since subscribers start and stop."""


def broker_consumers(broker: KafkaBroker) -> Iterator[tuple[str, Any]]:
    """The started consumers of `broker`'s group subscribers. One without a
    group (the gateway's relay reads from the end and commits nothing) has
    no lag to speak of, and FastStream's in-memory test broker has no real
    consumers: both are left out."""
    for subscriber in broker.subscribers:
        if not isinstance(subscriber, LogicSubscriber) or subscriber.group_id is None:
            continue
        if isinstance(subscriber.consumer, AIOKafkaConsumer):
            yield subscriber.group_id, subscriber.consumer


async def partition_lags(consumer: Any) -> dict[TopicPartition, int]:
    """Lag per partition assigned to `consumer` (an AIOKafkaConsumer with a
    group), for the partitions it has fetched from at least once; those it
    has not are 0 (nothing known yet)."""
    # Read at once, with no await in between: `highwater` insists that the
    # partition is assigned, and a rebalance can only happen at an await.
    highs: dict[TopicPartition, int | None] = {tp: consumer.highwater(tp) for tp in consumer.assignment()}
    fetched = [tp for tp, high in highs.items() if high is not None]
    committed = dict(zip(fetched, await asyncio.gather(*(consumer.committed(tp) for tp in fetched)), strict=True))
    never = [tp for tp, offset in committed.items() if offset is None]
    starts: dict[TopicPartition, int] = await consumer.beginning_offsets(never) if never else {}
    lags = dict.fromkeys(highs, 0)
    for tp in fetched:
        high = int(highs[tp] or 0)
        done = committed[tp]
        done = starts.get(tp, 0) if done is None else done
        lags[tp] = max(0, high - int(done))
    return lags


class ConsumerLag(Collector):
    """The lag gauge of one registry, fed by a periodic pass over `consumers`."""

    def __init__(
        self, registry: CollectorRegistry, consumers: Consumers, interval_seconds: float = REFRESH_SECONDS
    ) -> None:
        self.consumers = consumers
        self.interval = interval_seconds
        self.figures: dict[tuple[str, str], int] = {}
        # A pass that outlives its interval (a broker that stopped answering:
        # aiokafka retries committed-offset reads for ever) is cut short.
        self.periodic = Periodic("consumer lag", interval_seconds, self.refresh, (KafkaError, TimeoutError))
        registry.register(self)

    async def refresh(self) -> None:
        """Measure every consumer now; the collector reports the new figures.
        A failed pass keeps the previous ones (Periodic logs why)."""
        figures: dict[tuple[str, str], int] = {}
        async with asyncio.timeout(max(self.interval, 1.0)):
            for group, consumer in list(self.consumers()):
                for tp, lag in (await partition_lags(consumer)).items():
                    figures[(tp.topic, group)] = figures.get((tp.topic, group), 0) + lag
        self.figures = figures

    async def start(self) -> None:
        await self.periodic.start()

    async def stop(self) -> None:
        await self.periodic.stop()

    def describe(self) -> list[Metric]:
        # Names only, so the registry refuses a second lag collector.
        return [GaugeMetricFamily(NAME, DOCUMENTATION, labels=["topic", "group"])]

    def collect(self) -> list[Metric]:
        gauge = GaugeMetricFamily(NAME, DOCUMENTATION, labels=["topic", "group"])
        for (topic, group), lag in sorted(self.figures.items()):
            gauge.add_metric([topic, group], lag)
        return [gauge]
