"""What the session worker does with each inbound event. Delivery is
at-least-once, so every step is idempotent: a message or reply recorded twice
keeps its first seq, and is re-announced rather than recorded again."""

import logging

from supportdesk_contracts.events import (
    MemoryCondensed,
    MessageAccepted,
    MessageReceived,
    Reply,
    ReplyCompleted,
    ReplyRecorded,
    SessionClosed,
    SessionEscalated,
    TurnFailed,
    TurnRequested,
)
from supportdesk_contracts.frames import ReplyFrame
from supportdesk_platform.kafka import Publisher, key_of
from supportdesk_session.memory import CONDENSE_BACKLOG, recall
from supportdesk_sessions.recorder import SessionRecorder
from supportdesk_sessions.records import HUMAN_ANSWERS, HandoffRefused

log = logging.getLogger(__name__)


class SessionLedger:
    def __init__(
        self,
        store: SessionRecorder,
        outbound: Publisher,
        turns: Publisher,
        escalations: Publisher,
        history_turns: int,
        memory_tokens: int = 1500,
    ) -> None:
        self.store = store
        self.outbound = outbound
        self.turns = turns
        self.escalations = escalations
        self.history_turns = history_turns
        self.memory_tokens = memory_tokens

    async def message_received(self, event: MessageReceived) -> None:
        key = key_of(event.session_id)
        recorded = await self.store.record_user_message(event.session_id, event.message_id, event.content)
        if recorded is None:
            await self.outbound.publish(
                TurnFailed(
                    **event.caused(),
                    reply_to=event.message_id,
                    code="session_not_found",
                    message="The session expired or was deleted.",
                ),
                key=key,
            )
            return
        await self.outbound.publish(
            MessageAccepted(
                **event.caused(),
                message_id=event.message_id,
                seq=recorded.seq,
                duplicate=not recorded.new,
                handoff=recorded.handoff if recorded.handoff in HUMAN_ANSWERS else None,
            ),
            key=key,
        )
        if recorded.handoff in HUMAN_ANSWERS:
            return  # a human answers: recorded and acknowledged, and the bot stays silent
        if not recorded.new:
            frame = await self.store.reply_frame(event.session_id, event.message_id)
            if frame is not None:
                # Already answered: re-announce the recorded reply (same seq, so
                # a client that has it ignores it) instead of answering again.
                await self.outbound.publish(self._recorded_from_frame(event, frame), key=key)
                return
        memory = await self.store.memory(event.session_id, self.history_turns + 1 + CONDENSE_BACKLOG)
        recalled = recall(memory, event.message_id, self.history_turns, self.memory_tokens)
        await self.turns.publish(
            TurnRequested(
                **event.caused(),
                message_id=event.message_id,
                content=event.content,
                history=recalled.history,
                summary=recalled.summary,
                condense=recalled.condense,
                condense_upto=recalled.condense_upto,
            ),
            key=key,
        )

    def _recorded_from_frame(self, cause: MessageReceived | ReplyCompleted, frame: ReplyFrame) -> ReplyRecorded:
        reply = Reply.model_validate({**frame.model_dump(), "id": frame.message_id})
        return ReplyRecorded(**cause.caused(), reply_to=frame.reply_to, reply=reply, role=frame.role, seq=frame.seq)

    async def reply_completed(self, event: ReplyCompleted) -> None:
        key = key_of(event.session_id)
        try:
            recorded = await self.store.record_reply(event.session_id, event.reply_to, event.reply)
        except HandoffRefused as refused:
            # The fence: this turn began before a human took the session over.
            log.info("bot reply fenced off", extra={"handoff": refused.status, "reply_to": event.reply_to})
            return
        if recorded is None:
            log.info("reply for a session that no longer exists", extra={"session_id": event.session_id})
            return
        if recorded.new:
            await self.outbound.publish(
                ReplyRecorded(**event.caused(), reply_to=event.reply_to, reply=event.reply, seq=recorded.seq),
                key=key,
            )
        else:
            frame = await self.store.reply_frame(event.session_id, event.reply_to)
            if frame is not None:
                await self.outbound.publish(self._recorded_from_frame(event, frame), key=key)
        if event.reply.escalated:
            await self._escalate(event, event.escalation_reason or "escalated by the agent")

    async def _escalate(self, event: ReplyCompleted, reason: str) -> None:
        try:
            escalation = await self.store.record_escalation(event.session_id, reason, event.reply_to)
        except HandoffRefused:
            return  # a human has it already
        if escalation is None or await self.store.announced(event.session_id, escalation.seq):
            return
        # Recorded first, announced after: if publishing fails, the redelivered
        # event finds the escalation recorded but not announced, and announces it.
        escalated = SessionEscalated(**event.caused(), reason=reason, reply_to=event.reply_to, seq=escalation.seq)
        key = key_of(event.session_id)
        await self.outbound.publish(escalated, key=key)
        await self.escalations.publish(escalated, key=key)
        await self.store.mark_announced(event.session_id, escalation.seq)

    async def memory_condensed(self, event: MemoryCondensed) -> None:
        await self.store.record_summary(event.session_id, event.summary, event.upto)

    async def session_closed(self, event: SessionClosed) -> None:
        # The gateway purged the session when it published this (its named
        # `delete` operation); anything still in flight for the session finds
        # no session and is dropped. Nothing is left to write here.
        log.info("session closed", extra={"reason": event.reason})
