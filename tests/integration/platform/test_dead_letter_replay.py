"""The dead-letter tool against the real broker: it lists what the consumers
gave up on, shows one whole, and replays the chosen ones to their original
topic with their original key and body (marked as replayed); one whose body
was cut is refused, with its id."""

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from supportdesk_contracts.events import EventDeadLettered
from supportdesk_platform.deadletters import REPLAYED_HEADER, run
from supportdesk_platform.kafka import KafkaTopicProvisioner
from supportdesk_platform.settings import ServiceSettings

pytestmark = pytest.mark.integration

BODY = json.dumps({"event_type": "message.received", "message_id": "m1", "content": "hello"})


async def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None, dict[str, bytes]]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=3000)
        return [(r.key, r.value, dict(r.headers)) for records in batch.values() for r in records]
    finally:
        await consumer.stop()


async def test_list_show_and_replay(kafka_bootstrap: str, unique: str, capsys: pytest.CaptureFixture[str]) -> None:
    settings = ServiceSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=unique, kafka_partitions=2)
    work = f"{unique}.work"
    await KafkaTopicProvisioner(settings).ensure([settings.topics.dead_letters, work])
    whole = EventDeadLettered(
        topic=work,
        consumer="agent",
        reason="IndexOutage: Qdrant unreachable",
        payload=BODY,
        payload_bytes=len(BODY),
        key="session-1",
        attempts=8,
    )
    cut = EventDeadLettered(
        topic=work, consumer="ingest", reason="too big", payload=BODY[:10], payload_bytes=len(BODY), key="d1"
    )
    poison = EventDeadLettered(
        topic=work, consumer="agent", reason="invalid event: [...]", payload="{", payload_bytes=1, key="s2"
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    for event in (whole, cut, poison):
        await producer.send_and_wait(settings.topics.dead_letters, event.model_dump_json().encode(), key=b"k")
    await producer.send_and_wait(settings.topics.dead_letters, b"not a dead letter")
    await producer.stop()

    assert await run(["list"], settings) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(d["event_id"], d["consumer"], d["attempts"], d["replayable"], d["replayed"]) for d in listed} == {
        (str(whole.event_id), "agent", 8, True, False),
        (str(cut.event_id), "ingest", 1, False, False),
        (str(poison.event_id), "agent", 1, True, False),
    }
    assert await run(["list", "--reason", "qdrant"], settings) == 0
    assert [json.loads(line)["event_id"] for line in capsys.readouterr().out.splitlines()] == [str(whole.event_id)]

    assert await run(["show", str(whole.event_id)], settings) == 0
    assert json.loads(capsys.readouterr().out)["payload"] == BODY
    assert await run(["show", str(uuid.uuid4())], settings) == 1

    assert await run(["replay"], settings) == 2  # nothing named: nothing done
    assert await run(["replay", "--all"], settings) == 2  # every letter at once: a filter is needed
    assert await run(["replay", "--all", "--consumer", "agent", "--dry-run"], settings) == 0
    capsys.readouterr()
    assert await read_topic(kafka_bootstrap, work) == []

    # The undecodable one is left out: it would fail the same way.
    assert await run(["replay", "--all", "--consumer", "agent"], settings) == 0
    assert json.loads(capsys.readouterr().out) == {"replayed": 1, "not_replayable": []}
    [(key, value, headers)] = await asyncio.wait_for(read_topic(kafka_bootstrap, work), 30)
    assert (key, value, headers[REPLAYED_HEADER]) == (b"session-1", BODY.encode(), str(whole.event_id).encode())

    # Replayed once: not again by mistake, and listed as replayed.
    assert await run(["replay", "--all", "--consumer", "agent"], settings) == 0
    assert json.loads(capsys.readouterr().out) == {"replayed": 0, "not_replayable": []}
    assert await run(["list", "--consumer", "agent", "--reason", "qdrant"], settings) == 0
    assert json.loads(capsys.readouterr().out)["replayed"] is True
    assert await run(["replay", str(whole.event_id), "--again"], settings) == 0
    assert json.loads(capsys.readouterr().out) == {"replayed": 1, "not_replayable": []}
    assert len(await read_topic(kafka_bootstrap, work)) == 2

    assert await run(["replay", str(cut.event_id)], settings) == 1
    assert json.loads(capsys.readouterr().out) == {"replayed": 0, "not_replayable": [str(cut.event_id)]}
