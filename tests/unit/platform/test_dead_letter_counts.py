"""Dead letters are counted by the topic they came from and a fixed cause,
the one label an alert can group by (the reason's text stays in the letter)."""

from faststream.kafka import KafkaBroker, KafkaRouter, TestKafkaBroker
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, TypeAdapter

from supportdesk_platform.kafka import DeadLetters, RetryPolicy, subscribe_events
from supportdesk_platform.settings import ServiceSettings


class Job(BaseModel):
    name: str


async def handle(job: Job) -> None:
    if job.name == "poison":
        raise ValueError("the handler cannot cope with this one")
    if job.name == "outage":
        raise ConnectionResetError("a dependency is down")  # transient: retried, then given up


async def test_dead_letters_are_counted_by_topic_and_cause(unique: str) -> None:
    registry = CollectorRegistry()
    router = KafkaRouter()
    topic, dead_topic = f"{unique}.jobs", f"{unique}.dead"
    dead_letters = DeadLetters(router.publisher(dead_topic), "test", RetryPolicy(attempts=1), registry=registry)
    subscribe_events(
        router,
        ServiceSettings(kafka_topic_prefix=unique),
        topic=topic,
        group_id="g",
        title="t",
        adapter=TypeAdapter(Job),
        dead_letters=dead_letters,
        handler=handle,
    )
    # Another consumer of the same service shares the counter.
    DeadLetters(router.publisher(dead_topic), "other", registry=registry)
    broker = KafkaBroker()
    broker.include_router(router)
    async with TestKafkaBroker(broker):
        await broker.publish(b"{not json", topic)
        for name in ("poison", "fine", "poison", "outage"):
            await broker.publish(Job(name=name), topic)

    def count(reason: str) -> float | None:
        return registry.get_sample_value("supportdesk_dead_letters_total", {"topic": topic, "reason": reason})

    assert (count("invalid_event"), count("handler_error"), count("retries_exhausted")) == (1, 2, 1)


async def test_every_cause_has_a_series_before_its_first_dead_letter(unique: str) -> None:
    """increase() cannot see the first dead letter of a series that appears
    with it: the subscriber's topic starts at 0 for every cause."""
    registry = CollectorRegistry()
    router = KafkaRouter()
    topic = f"{unique}.jobs"
    subscribe_events(
        router,
        ServiceSettings(kafka_topic_prefix=unique),
        topic=topic,
        group_id="g",
        title="t",
        adapter=TypeAdapter(Job),
        dead_letters=DeadLetters(router.publisher(f"{unique}.dead"), "test", registry=registry),
        handler=handle,
    )
    for reason in ("invalid_event", "handler_error", "retries_exhausted"):
        assert registry.get_sample_value("supportdesk_dead_letters_total", {"topic": topic, "reason": reason}) == 0


async def test_a_dead_letter_carries_the_turn_it_was_part_of(unique: str) -> None:
    """Found by the turn's id: the letter's correlation_id (and so its Kafka
    header) is the failed event's."""
    router = KafkaRouter()
    topic, dead_topic = f"{unique}.jobs", f"{unique}.dead"
    letters: list[dict[str, object]] = []
    subscribe_events(
        router,
        ServiceSettings(kafka_topic_prefix=unique),
        topic=topic,
        group_id="g",
        title="t",
        adapter=TypeAdapter(Job),
        dead_letters=DeadLetters(router.publisher(dead_topic), "test"),
        handler=handle,
    )

    @router.subscriber(dead_topic)  # type: ignore[untyped-decorator]
    async def dead(letter: dict[str, object]) -> None:
        letters.append(letter)

    broker = KafkaBroker()
    broker.include_router(router)
    async with TestKafkaBroker(broker):
        await broker.publish(Job(name="poison"), topic, correlation_id="turn-7")
    [letter] = letters
    assert letter["correlation_id"] == "turn-7"
