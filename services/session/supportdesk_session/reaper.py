"""Expiry made visible. Redis drops an idle session's keys by itself (TTL);
the reaper notices from the index of live sessions, cleans the index, logs
the expiry and publishes `SessionClosed(reason="expired")` on the session's
log, so expiries can be counted and acted on like deletions. Several session
workers may reap at once: only the one whose removal from the index succeeds
reports an expiry, so each is reported once."""

import logging
import time

from redis.exceptions import RedisError

from supportdesk_contracts.events import SessionClosed
from supportdesk_platform.kafka import Publisher, key_of
from supportdesk_platform.periodic import Periodic
from supportdesk_sessions.state import SessionState

log = logging.getLogger(__name__)
BATCH = 200


class SessionReaper:
    def __init__(self, store: SessionState, inbound: Publisher, interval_seconds: float) -> None:
        self.store = store
        self.inbound = inbound
        self.active = 0
        self.periodic = Periodic("expiry sweep", interval_seconds, self.reap, (RedisError,))

    async def reap(self) -> int:
        """One pass: returns how many expiries it reported."""
        redis, index = self.store.redis, self.store.active
        due = await redis.zrangebyscore(index, "-inf", time.time(), start=0, num=BATCH)
        expired = 0
        for raw in due:
            session_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            ttl = await redis.ttl(self.store.keys(session_id).meta)
            if ttl > 0:  # active after all (the index lags a moment behind a write)
                await redis.zadd(index, {session_id: time.time() + ttl})
                continue
            if await redis.zrem(index, session_id):
                expired += 1
                log.info("session expired", extra={"session_id": session_id})
                await self.inbound.publish(
                    SessionClosed(session_id=session_id, reason="expired"), key=key_of(session_id)
                )
        self.active = await self.store.active_count()
        return expired
