"""Everything the gateway tells the rest of the system goes through here."""

from faststream.kafka import KafkaBroker

from supportdesk_contracts.events import (
    AttachmentUploaded,
    Channel,
    DocumentDeleted,
    DocumentUploaded,
    MessageReceived,
    ReplyRecorded,
    SessionClosed,
    SessionStatusChanged,
)
from supportdesk_contracts.topics import Topics
from supportdesk_platform.kafka import key_of


class EventPublisher:
    def __init__(self, broker: KafkaBroker, topics: Topics, replica_id: str) -> None:
        self.broker = broker
        self.topics = topics
        self.replica_id = replica_id

    async def message_received(self, session_id: str, message_id: str, content: str, channel: Channel) -> None:
        event = MessageReceived(
            session_id=session_id,
            correlation_id=message_id,
            message_id=message_id,
            content=content,
            channel=channel,
            gateway_id=self.replica_id,
        )
        await self.broker.publish(event, self.topics.chat_inbound, key=key_of(session_id))

    async def session_closed(self, session_id: str, reason: str) -> None:
        event = SessionClosed(session_id=session_id, reason=reason)
        await self.broker.publish(event, self.topics.chat_inbound, key=key_of(session_id))

    async def handoff(self, event: SessionStatusChanged | ReplyRecorded) -> None:
        """An operator's action, to the user's sockets on every replica and
        (status changes) to the operators' feed."""
        key = key_of(event.session_id)
        await self.broker.publish(event, self.topics.chat_outbound, key=key)
        if isinstance(event, SessionStatusChanged):
            await self.broker.publish(event, self.topics.escalations, key=key)

    async def document_uploaded(self, event: DocumentUploaded) -> None:
        await self.broker.publish(event, self.topics.document_uploads, key=key_of(event.document_id))

    async def attachment_uploaded(self, event: AttachmentUploaded) -> None:
        # Keyed by session: one session's attachments are parsed in order.
        await self.broker.publish(event, self.topics.document_uploads, key=key_of(event.session_id))

    async def document_deleted(self, document_id: str) -> None:
        event = DocumentDeleted(document_id=document_id)
        await self.broker.publish(event, self.topics.document_uploads, key=key_of(document_id))
