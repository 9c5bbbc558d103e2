"""Kafka subscriber of the session worker: the chat.inbound log."""

from dataclasses import dataclass

from faststream.kafka import KafkaRouter
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter

from supportdesk_contracts.events import (
    EscalationEvent,
    InboundEvent,
    MemoryCondensed,
    MessageReceived,
    ReplyCompleted,
    SessionClosed,
    SessionEscalated,
    SessionStatusChanged,
    TurnFailed,
)
from supportdesk_platform.dispatch import KeyedDispatcher
from supportdesk_platform.kafka import DeadLetters, RetryPolicy, key_of, subscribe_events, subscribe_keyed
from supportdesk_session.ledger import SessionLedger
from supportdesk_session.settings import SessionWorkerSettings
from supportdesk_session.webhook import EscalationWebhook
from supportdesk_sessions.recorder import SessionRecorder

_INBOUND = TypeAdapter[InboundEvent](InboundEvent)
_ESCALATIONS = TypeAdapter[EscalationEvent](EscalationEvent)


@dataclass
class InboundRouter:
    router: KafkaRouter
    dispatcher: KeyedDispatcher
    """Drained before the broker stops (what was taken finishes or is redelivered)."""


def build_router(
    settings: SessionWorkerSettings, store: SessionRecorder, registry: CollectorRegistry | None = None
) -> InboundRouter:
    """The chat.inbound subscriber: up to SESSION_CONCURRENCY sessions' events
    handled at once, each session's in order (its key; dispatch.py). One
    event after another, the worker waited on Redis and on each publish's
    acknowledgement in turn: with two events a turn that capped the whole
    system at ~70 turns a second, however many agents answered."""
    topics = settings.topics
    router = KafkaRouter()
    ledger = SessionLedger(
        store,
        outbound=router.publisher(topics.chat_outbound, title="session:outbound"),
        turns=router.publisher(topics.agent_turns, title="session:turns"),
        escalations=router.publisher(topics.escalations, title="session:escalations"),
        history_turns=settings.history_turns,
        memory_tokens=settings.memory_token_budget,
    )
    outbound = router.publisher(topics.chat_outbound, title="session:failures")

    async def given_up(event: object, reason: str) -> None:
        # A message that could not be recorded: its client gets an error
        # frame (and may send it again with the same id) instead of silence.
        match event:
            case MessageReceived():
                reply_to, message = event.message_id, "The message could not be recorded: please send it again."
            case ReplyCompleted():
                # Its deltas were streamed; without this the client would wait for a reply forever.
                reply_to, message = event.reply_to, "The answer could not be recorded: please send the message again."
            case _:
                return
        failed = TurnFailed(**event.caused(), reply_to=reply_to, code="unavailable", message=message)
        await outbound.publish(failed, key=key_of(event.session_id))

    dead_letters = DeadLetters(
        router.publisher(topics.dead_letters, title="session:deadletter"),
        "session",
        RetryPolicy.of(settings),
        given_up,
        registry,
    )

    async def dispatch(event: MessageReceived | ReplyCompleted | SessionClosed | MemoryCondensed) -> None:
        match event:
            case MessageReceived():
                await ledger.message_received(event)
            case ReplyCompleted():
                await ledger.reply_completed(event)
            case SessionClosed():
                await ledger.session_closed(event)
            case MemoryCondensed():
                await ledger.memory_condensed(event)

    dispatcher = subscribe_keyed(
        router,
        settings,
        topic=topics.chat_inbound,
        group_id=settings.consumer_group,
        title="session:inbound",
        adapter=_INBOUND,
        dead_letters=dead_letters,
        handler=dispatch,
        max_in_flight=settings.concurrency,
    )
    return InboundRouter(router, dispatcher)


def subscribe_webhook(
    router: KafkaRouter,
    settings: SessionWorkerSettings,
    webhook: EscalationWebhook,
    registry: CollectorRegistry | None = None,
) -> None:
    """The escalations log, in a consumer group of its own: a slow webhook
    receiver delays no chat turn."""
    dead_letters = DeadLetters(
        router.publisher(settings.topics.dead_letters, title="webhook:deadletter"),
        "webhook",
        RetryPolicy.of(settings),
        registry=registry,
    )

    async def notify(event: SessionEscalated | SessionStatusChanged) -> None:
        if isinstance(event, SessionEscalated):
            await webhook.notify(event)

    subscribe_events(
        router,
        settings,
        topic=settings.topics.escalations,
        group_id=f"{settings.consumer_group}-webhook",
        title="session:webhook",
        adapter=_ESCALATIONS,
        dead_letters=dead_letters,
        handler=notify,
    )
