"""The outbound subscriber: every replica reads every outbound event and
hands it to its hub. No consumer group, so each replica sees all partitions;
it starts at the end, because earlier frames are served from the frame log."""

import logging

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from pydantic import TypeAdapter, ValidationError

from supportdesk_contracts.events import OutboundEvent
from supportdesk_contracts.frames import frame_of
from supportdesk_gateway.hub import Hub
from supportdesk_gateway.timing import SocketTurns
from supportdesk_platform.kafka import consumer_options
from supportdesk_platform.settings import ServiceSettings
from supportdesk_platform.telemetry import span

log = logging.getLogger(__name__)
_OUTBOUND = TypeAdapter[OutboundEvent](OutboundEvent)


class Relay:
    def __init__(self, settings: ServiceSettings, hub: Hub, turns: SocketTurns | None = None) -> None:
        self.hub = hub
        self.turns = turns
        self.router = KafkaRouter()
        options = consumer_options(settings)
        options.pop("session_timeout_ms")
        options.pop("heartbeat_interval_ms")
        self.subscriber: DefaultSubscriber = self.router.subscriber(  # type: ignore[assignment]
            settings.topics.chat_outbound,
            auto_offset_reset="latest",
            ack_policy=AckPolicy.ACK_FIRST,
            title="gateway:outbound",
            **options,
        )
        self.subscriber(self.on_outbound)

    async def on_outbound(self, message: KafkaMessage) -> None:
        try:
            event = _OUTBOUND.validate_json(message.body)
        except ValidationError:
            # Not ours to dead-letter: the producing worker validated it; an
            # unknown newer event type is simply not shown to clients.
            log.warning("unreadable outbound event skipped", extra={"bytes": len(message.body)})
            return
        frame = frame_of(event)
        sockets = self.hub.sockets_of(event.session_id)
        if sockets or self.hub.watching(event.session_id, frame):
            # The last hop of a message's trace, on the replica that holds
            # the user's socket or call (every replica reads every event).
            with span("deliver", {"supportdesk.frame": frame.type, "supportdesk.sockets": sockets}):
                self.hub.deliver(event.session_id, frame)
        else:
            self.hub.deliver(event.session_id, frame)
        if self.turns is not None:
            self.turns.seen(event.session_id, frame)

    async def ready(self) -> bool:
        """True once the consumer holds every partition and knows its position:
        a frame produced after this is guaranteed to reach the hub."""
        consumer = self.subscriber.consumer
        if consumer is None:
            return False
        assignment = consumer.assignment()
        if not assignment:
            return False
        for partition in assignment:
            await consumer.position(partition)
        return True
