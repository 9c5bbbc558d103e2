"""The session worker's writes: every message, reply and escalation is recorded
once, with its frame, in one atomic step. Delivery is at-least-once, so a
redelivered event finds its id recorded and gets its original seq back."""

import time
from typing import Any

from redis.asyncio import Redis

from supportdesk_contracts.events import MessageAccepted, Reply, ReplyRecorded, Role, SessionEscalated
from supportdesk_contracts.frames import LoggedFrame, ServerFrame, frame_of
from supportdesk_platform.redis_values import as_text
from supportdesk_sessions.cipher import SessionCipher
from supportdesk_sessions.records import Recorded, utcnow
from supportdesk_sessions.state import SessionState

# Atomically: if the session exists and `id_field` was never recorded, take the
# next frame seq, store the frame (and the history message, if any), apply the
# extra meta fields and renew the TTL. Returns {status, seq, user_key}: status
# 1 new, 0 already recorded (seq is the original one), -1 no such session;
# user_key names the user's recovery index ('' without a user), which lives in
# another hash slot and so is renewed by the caller.
# History and frame log keep the latest `kept` entries: a session that chats
# for days must not grow without bound (resume covers recent gaps; the
# history endpoint pages through what is kept).
# KEYS: meta, messages, recorded, frames, tokens (SessionKeys.all()).
# ARGV: id_field, message ('' for none), frame, now, ttl, kept, then meta field pairs.
_RECORD_ONCE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0, ''} end
local seen = redis.call('HGET', KEYS[3], ARGV[1])
if seen then return {0, tonumber(seen), redis.call('HGET', KEYS[1], 'user_key') or ''} end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[3], ARGV[1], seq)
local kept = tonumber(ARGV[6])
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -kept, -1)
  redis.call('HINCRBY', KEYS[1], 'message_count', 1)
end
redis.call('HSET', KEYS[4], seq, ARGV[3])
if seq > kept then redis.call('HDEL', KEYS[4], seq - kept) end
redis.call('HSET', KEYS[1], 'last_activity', ARGV[4])
for i = 7, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return {1, seq, redis.call('HGET', KEYS[1], 'user_key') or ''}
"""

# Frames are built with this placeholder and stored without it: the seq is
# known only inside the Lua step, and is put back when the log is read. They
# are built by `frame_of` from the very event the gateways turn into the live
# frame, so a replayed frame equals the live one.
UNASSIGNED_SEQ = 0
DEFAULT_KEPT = 1000


def _logged(frame: ServerFrame) -> LoggedFrame:
    if not isinstance(frame, LoggedFrame):
        raise TypeError(f"{frame.type} frames are not kept in the frame log")
    return frame


class SessionRecorder(SessionState):
    def __init__(
        self, redis: Redis, cipher: SessionCipher, ttl_seconds: int, prefix: str = "sd", kept: int = DEFAULT_KEPT
    ) -> None:
        super().__init__(redis, cipher, ttl_seconds, prefix)
        self.kept = kept
        self._record_once = redis.register_script(_RECORD_ONCE)

    async def _record(
        self,
        session_id: str,
        id_field: str,
        message: dict[str, Any] | None,
        frame: ServerFrame,
        meta_fields: dict[str, str] | None = None,
    ) -> Recorded | None:
        args: list[str | int] = [
            id_field,
            self.cipher.encrypt(message) if message is not None else "",
            self.cipher.encrypt(_logged(frame).model_dump(mode="json", exclude={"seq"})),
            utcnow().isoformat(),
            self.ttl,
            self.kept,
        ]
        for name, value in (meta_fields or {}).items():
            args += [name, value]
        status, seq, user_key = await self._record_once(keys=self.keys(session_id).all(), args=args)
        if status == -1:
            return None
        # Outside the Lua step: these keys live in other hash slots (Redis Cluster).
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.active, {session_id: time.time() + self.ttl})
            if user_key:
                pipe.expire(as_text(user_key), self.ttl)
            await pipe.execute()
        return Recorded(new=status == 1, seq=int(seq))

    async def record_user_message(self, session_id: str, message_id: str, content: str) -> Recorded | None:
        message = {"id": message_id, "role": "user", "content": content, "created_at": utcnow().isoformat()}
        frame = frame_of(MessageAccepted(session_id=session_id, message_id=message_id, seq=UNASSIGNED_SEQ))
        return await self._record(session_id, f"m:{message_id}", message, frame)

    async def record_reply(
        self, session_id: str, reply_to: str, reply: Reply, role: Role = "assistant"
    ) -> Recorded | None:
        message = {
            "id": reply.id,
            "role": role,
            "content": reply.content,
            "created_at": utcnow().isoformat(),
            "sources": [s.model_dump() for s in reply.sources],
            "reply_to": reply_to,
        }
        frame = frame_of(
            ReplyRecorded(session_id=session_id, reply_to=reply_to, reply=reply, role=role, seq=UNASSIGNED_SEQ)
        )
        return await self._record(session_id, f"r:{reply_to}", message, frame)

    async def record_escalation(self, session_id: str, reason: str, reply_to: str | None) -> Recorded | None:
        """Marks the session escalated; only the first escalation takes a frame."""
        frame = frame_of(SessionEscalated(session_id=session_id, reason=reason, reply_to=reply_to, seq=UNASSIGNED_SEQ))
        return await self._record(
            session_id, "e:escalated", None, frame, {"escalated": "1", "escalation_reason": reason}
        )
