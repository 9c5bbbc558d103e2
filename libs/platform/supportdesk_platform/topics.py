"""Create the deployment's topics and exit: what a Kubernetes Job (or an
operator by hand) runs when the services do not create their own topics
(KAFKA_CREATE_TOPICS=false).

    python -m supportdesk_platform.topics

It reads the same settings as the services (KAFKA_BOOTSTRAP_SERVERS,
KAFKA_TOPIC_PREFIX, KAFKA_PARTITIONS, KAFKA_REPLICATION_FACTOR,
KAFKA_RETENTION_MS, KAFKA_SECURITY_PROTOCOL and the SASL/TLS settings),
waits for Kafka with backoff, and exits 0 once every topic exists.
Existing topics are left as they are.
"""

import asyncio
import logging

from supportdesk_platform.kafka import KafkaTopicProvisioner, TopicProvisioningError
from supportdesk_platform.logs import configure_logging
from supportdesk_platform.settings import ServiceSettings

log = logging.getLogger("supportdesk.topics")


async def provision(settings: ServiceSettings) -> list[str]:
    topics = list(settings.topics.all())
    await KafkaTopicProvisioner(settings, create=True).ensure(topics)
    return topics


def main() -> None:
    settings = ServiceSettings()
    configure_logging("topics", settings.log_level, settings.log_format)
    try:
        topics = asyncio.run(provision(settings))
    except TopicProvisioningError as exc:
        raise SystemExit(f"topic provisioning failed: {exc}") from exc
    log.info("topics ready", extra={"topics": topics, "partitions": settings.kafka_partitions})


if __name__ == "__main__":
    main()
