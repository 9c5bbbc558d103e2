"""Kafka subscriber of the session worker: the chat.inbound log."""

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from pydantic import TypeAdapter

from supportdesk_contracts.events import InboundEvent, MessageReceived, ReplyCompleted, SessionClosed
from supportdesk_platform.kafka import DeadLetters, consumer_options
from supportdesk_platform.sessions import SessionStore
from supportdesk_session.ledger import SessionLedger
from supportdesk_session.settings import SessionWorkerSettings

_INBOUND = TypeAdapter[InboundEvent](InboundEvent)


def build_router(settings: SessionWorkerSettings, store: SessionStore) -> KafkaRouter:
    topics = settings.topics
    router = KafkaRouter()
    ledger = SessionLedger(
        store,
        outbound=router.publisher(topics.chat_outbound, title="session:outbound"),
        turns=router.publisher(topics.agent_turns, title="session:turns"),
        escalations=router.publisher(topics.escalations, title="session:escalations"),
        history_turns=settings.history_turns,
    )
    dead_letters = DeadLetters(router.publisher(topics.dead_letters, title="session:deadletter"), "session")

    async def dispatch(event: MessageReceived | ReplyCompleted | SessionClosed) -> None:
        match event:
            case MessageReceived():
                await ledger.message_received(event)
            case ReplyCompleted():
                await ledger.reply_completed(event)
            case SessionClosed():
                await ledger.session_closed(event)

    @router.subscriber(
        topics.chat_inbound,
        group_id=settings.consumer_group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="session:inbound",
        **consumer_options(settings),
    )
    async def on_inbound(message: KafkaMessage) -> None:
        await dead_letters.consume(_INBOUND, message, dispatch)

    return router
