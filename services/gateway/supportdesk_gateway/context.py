"""The gateway's clients, created once at start-up and held here."""

from dataclasses import dataclass

from faststream.kafka import KafkaBroker
from redis.asyncio import Redis

from supportdesk_gateway.hub import Hub
from supportdesk_gateway.metrics import GatewayMetrics
from supportdesk_gateway.publisher import EventPublisher
from supportdesk_gateway.relay import Relay
from supportdesk_gateway.settings import GatewaySettings
from supportdesk_platform.documents import DocumentRegistry
from supportdesk_platform.ops import Health
from supportdesk_platform.sessions import SessionStore


@dataclass
class GatewayContext:
    settings: GatewaySettings
    redis: Redis
    broker: KafkaBroker
    store: SessionStore
    documents: DocumentRegistry
    hub: Hub
    relay: Relay
    events: EventPublisher
    health: Health
    metrics: GatewayMetrics
