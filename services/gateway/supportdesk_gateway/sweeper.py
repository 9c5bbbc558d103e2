"""Sockets of sessions that ended: a session deleted (on any replica) or
expired leaves its sockets open on every gateway that holds one, with a
token that no longer means anything. Every few seconds each replica asks
Redis, in one round trip, which of the sessions it holds sockets for still
exist, and closes the others' sockets (4004)."""

import logging

from redis.exceptions import RedisError

from supportdesk_gateway.hub import Hub
from supportdesk_platform.periodic import Periodic
from supportdesk_sessions.state import SessionState

log = logging.getLogger(__name__)


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
        if not session_ids:
            return 0
        async with self.sessions.redis.pipeline(transaction=False) as pipe:
            for session_id in session_ids:
                pipe.exists(self.sessions.keys(session_id).meta)
            alive = await pipe.execute()
        closed = 0
        for session_id, exists in zip(session_ids, alive, strict=True):
            if not exists:
                closed += self.hub.end_session(session_id)
                log.info("session ended; its sockets closed", extra={"session_id": session_id})
        return closed
