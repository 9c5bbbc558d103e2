"""A promise kept either way: a session nobody claims within
`HANDOFF_CLAIM_TIMEOUT_SECONDS` goes back to the bot, and the user is told
so, rather than waiting for a reply that is not coming. Several session
workers may sweep at once: the step is recorded once per time the session
entered the queue, and only the worker that records it announces it."""

import logging
import time

from redis.exceptions import RedisError

from supportdesk_contracts.events import SessionStatusChanged
from supportdesk_platform.kafka import Publisher, key_of
from supportdesk_platform.periodic import Periodic
from supportdesk_sessions.recorder import SessionRecorder
from supportdesk_sessions.records import HandoffRefused

log = logging.getLogger(__name__)
NOBODY_CAME = (
    "Sorry, nobody from our team is free right now. You can keep chatting with the assistant here; "
    "ask for a person again any time."
)


class UnclaimedHandoffs:
    def __init__(
        self,
        store: SessionRecorder,
        outbound: Publisher,
        escalations: Publisher,
        timeout_seconds: float,
        interval_seconds: float,
    ) -> None:
        self.store = store
        self.outbound = outbound
        self.escalations = escalations
        self.timeout = timeout_seconds
        self.periodic = Periodic("unclaimed handoff sweep", interval_seconds, self.sweep, (RedisError,))

    async def sweep(self) -> int:
        """One pass: returns how many sessions it handed back to the bot."""
        waited_since = time.time() - self.timeout
        handed = 0
        for session_id, since in await self.store.handoff_queue():
            if since > waited_since:
                break  # oldest first: the rest waited less
            record = await self.store.get(session_id)
            if record is None or record.handoff != "awaiting_human":
                continue
            try:
                recorded = await self.store.record_status(
                    session_id, f"unclaimed:{since}", "bot", NOBODY_CAME, "", ("awaiting_human",)
                )
            except HandoffRefused:
                continue  # claimed a moment ago
            if recorded is None or not recorded.new:
                continue
            handed += 1
            log.info("handoff not claimed in time; the bot answers again", extra={"session_id": session_id})
            event = SessionStatusChanged(session_id=session_id, status="bot", message=NOBODY_CAME, seq=recorded.seq)
            await self.outbound.publish(event, key=key_of(session_id))
            await self.escalations.publish(event, key=key_of(session_id))
        return handed
