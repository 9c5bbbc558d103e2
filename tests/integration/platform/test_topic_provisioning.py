"""Topic provisioning against a real broker: a service that starts before
Kafka waits for it instead of crash-looping, and with KAFKA_CREATE_TOPICS
off it waits for the topics Job (`python -m supportdesk_platform.topics`)."""

import asyncio
import sys

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from devstack import free_port, minimal_env, start_tansu, stop_process
from supportdesk_platform.kafka import KafkaTopicProvisioner, TopicProvisioningError
from supportdesk_platform.settings import ServiceSettings


async def partitions_of(bootstrap: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        # Only existing ones: describing a missing topic may auto-create it.
        existing = [t for t in topics if t in await admin.list_topics()]
        described = await admin.describe_topics(existing) if existing else []
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


async def configs_of(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    [resource] = response.resources
    return {entry[0]: entry[1] for entry in resource[4]}


async def test_topics_are_created_with_retention_and_durability_settings(kafka_bootstrap: str, unique: str) -> None:
    """Chats must not stay in the log forever; dead letters wait longer for a human."""
    settings = ServiceSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=unique,
        kafka_retention_ms=3_600_000,
        kafka_deadletter_retention_ms=7_200_000,
        kafka_min_insync_replicas=1,
    )
    await KafkaTopicProvisioner(settings).ensure(settings.topics.all())
    chat = await configs_of(kafka_bootstrap, settings.topics.chat_inbound)
    dead = await configs_of(kafka_bootstrap, settings.topics.dead_letters)
    assert (chat["retention.ms"], chat["min.insync.replicas"]) == ("3600000", "1")
    assert dead["retention.ms"] == "7200000"


async def test_start_up_waits_for_a_broker_that_is_still_coming_up(unique: str) -> None:
    address = f"127.0.0.1:{free_port()}"
    settings = ServiceSettings(
        kafka_bootstrap_servers=address,
        kafka_topic_prefix=unique,
        kafka_partitions=3,
        kafka_provision_timeout_seconds=60,
    )
    topics = settings.topics.all()
    provisioning = asyncio.create_task(KafkaTopicProvisioner(settings).ensure(topics))
    await asyncio.sleep(2)
    assert not provisioning.done(), "it must keep retrying, not fail, while nothing listens"
    broker = await asyncio.to_thread(start_tansu, address)
    try:
        await asyncio.wait_for(provisioning, 60)
        assert await partitions_of(address, topics) == dict.fromkeys(topics, 3)
    finally:
        stop_process(broker)


async def test_a_broker_that_never_comes_gives_a_clear_error_in_time() -> None:
    settings = ServiceSettings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", kafka_provision_timeout_seconds=2)
    with pytest.raises(TopicProvisioningError, match="topics not ready after 2 s"):
        await asyncio.wait_for(KafkaTopicProvisioner(settings).ensure(["t"]), 30)


async def test_without_topic_creation_a_service_waits_for_the_topics_job(kafka_bootstrap: str, unique: str) -> None:
    settings = ServiceSettings(
        kafka_bootstrap_servers=kafka_bootstrap, kafka_topic_prefix=unique, kafka_create_topics=False
    )
    topics = settings.topics.all()
    waiting = asyncio.create_task(KafkaTopicProvisioner(settings).ensure(topics))
    await asyncio.sleep(1.5)
    assert not waiting.done(), "with KAFKA_CREATE_TOPICS=false nothing creates the topics but the Job"
    assert await partitions_of(kafka_bootstrap, topics) == {}
    env = minimal_env() | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": unique,
        "KAFKA_PARTITIONS": "2",
        "ENVIRONMENT": "production",  # the Job needs no session secrets
    }
    job = await asyncio.create_subprocess_exec(sys.executable, "-m", "supportdesk_platform.topics", env=env)
    assert await asyncio.wait_for(job.wait(), 60) == 0
    await asyncio.wait_for(waiting, 30)
    assert await partitions_of(kafka_bootstrap, topics) == dict.fromkeys(topics, 2)
