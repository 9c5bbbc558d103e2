"""`KAFKA_STORAGE=durable`: the local broker keeps its topics, records and
committed offsets on a local S3 emulator, so `kill -9` and a restart of the
broker lose nothing (with the default, memory, everything is gone)."""

import os
import signal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devstack import Stack, port_open, wait_for

pytestmark = pytest.mark.integration


async def consumed(bootstrap: str, topic: str, group: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=4000)
        values = sorted(r.value or b"" for records in batch.values() for r in records)
        await consumer.commit()
        return values
    finally:
        await consumer.stop()


@pytest.mark.parametrize(("storage", "survives"), [("durable", True), ("memory", False)])
async def test_a_broker_restart_loses_nothing_with_durable_storage(
    redis_url: str, tmp_path: Path, storage: str, survives: bool
) -> None:
    stack = Stack(redis_url=redis_url, data_dir=tmp_path, services=(), kafka_storage=storage, log_dir=tmp_path / "logs")
    stack.start()
    try:
        bootstrap = str(stack.kafka_bootstrap)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic("orders", 2, 1)])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        for i in range(6):
            await producer.send_and_wait("orders", f"order-{i}".encode(), key=f"k{i}".encode())
        await producer.stop()
        assert len(await consumed(bootstrap, "orders", "billing")) == 6  # and committed

        os.kill(stack.process("broker").popen.pid, signal.SIGKILL)
        stack.process("broker").popen.wait()
        stack.respawn("broker")
        host, port = bootstrap.rsplit(":", 1)
        wait_for(lambda: port_open(host, int(port)), 20, "the broker again")

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        partitions = await producer.partitions_for("orders") if survives else set()
        if survives:
            await producer.send_and_wait("orders", b"order-6", key=b"k6")
        await producer.stop()
        if survives:
            assert partitions == {0, 1}
            # The committed offsets survived too: only the new record is new to the group.
            assert await consumed(bootstrap, "orders", "billing") == [b"order-6"]
            assert len(await consumed(bootstrap, "orders", "audit")) == 7
        else:
            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
            await consumer.start()
            assert "orders" not in await consumer.topics()
            await consumer.stop()
    finally:
        stack.stop()
