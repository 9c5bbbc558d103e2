"""Sockets of sessions that ended: a session deleted (on any replica) or
expired leaves its sockets open on every gateway that holds one, with a
token that no longer means anything. Every few seconds each replica asks
Redis which of the sessions it holds sockets for still exist, a batch per
round trip, and closes the others' sockets (4004)."""

import logging

from redis.exceptions import RedisError

from supportdesk_gateway.hub import Hub
from supportdesk_platform.periodic import Periodic
from supportdesk_sessions.state import SessionState

log = logging.getLogger(__name__)

# Sessions checked per round trip. All of them in one pipeline held the event
# loop for ~170 ms at 10,000 sockets (building the commands, parsing the
# replies), every pass: the active chats' p99 showed it. A batch is ~20 ms.
SWEEP_BATCH = 500


class SessionSweeper:
    def __init__(self, hub: Hub, sessions: SessionState, interval_seconds: float) -> None:
        self.hub = hub
        self.sessions = sessions
        self.periodic = Periodic("session sweep", interval_seconds, self.sweep, (RedisError,))
        # Live sessions of the whole deployment, as of the last pass (diagnostics).
        self.active_sessions = 0

    async def sweep(self) -> int:
        """One pass; returns how many sockets were closed."""
        self.active_sessions = await self.sessions.active_count()
        session_ids = self.hub.session_ids()
        closed = 0
        for start in range(0, len(session_ids), SWEEP_BATCH):
            batch = session_ids[start : start + SWEEP_BATCH]
            async with self.sessions.redis.pipeline(transaction=False) as pipe:
                for session_id in batch:
                    pipe.exists(self.sessions.keys(session_id).meta)
                alive = await pipe.execute()
            for session_id, exists in zip(batch, alive, strict=True):
                if not exists:
                    closed += self.hub.end_session(session_id)
                    log.info("session ended; its sockets closed", extra={"session_id": session_id})
        return closed
