"""The session worker's writes: every message, reply and escalation is recorded
once, with its frame, in one atomic step. Delivery is at-least-once, so a
redelivered event finds its id recorded and gets its original seq back."""

import time
from typing import Any

from redis.asyncio import Redis

from supportdesk_contracts.events import (
    HandoffStatus,
    MessageAccepted,
    Reply,
    ReplyRecorded,
    Role,
    SessionEscalated,
    SessionStatusChanged,
)
from supportdesk_contracts.frames import LoggedFrame, ServerFrame, frame_of
from supportdesk_platform.redis_values import as_text
from supportdesk_sessions.cipher import SessionCipher
from supportdesk_sessions.records import (
    BOT_ANSWERS,
    HANDOFF,
    HUMAN_ANSWERS,
    HandoffRefused,
    Recorded,
    as_handoff,
    utcnow,
)
from supportdesk_sessions.state import SessionState

# Atomically: if the session exists and `id_field` was never recorded, take the
# next frame seq, store the frame (and the history message, if any), apply the
# extra meta fields and renew the TTL. Returns {status, seq, user_key, handoff}:
# status 1 new, 0 already recorded (seq is the original one), -1 no such
# session, -2 refused by the guard; user_key names the user's recovery index
# ('' without a user), which lives in another hash slot and so is renewed by
# the caller; handoff is the session's status (bot, awaiting_human, ...).
# The guard is the bot-silence fence: `allowed` lists the statuses in which
# this may be recorded, and `asked` names the message a bot reply answers,
# which must have been recorded after the bot last took the session over
# (`bot_since`): a reply whose turn began before a handoff is never recorded.
# `{epoch}` in id_field is the bot's takeover seq (one escalation per takeover);
# a meta value `{seq}` is the seq this step takes.
# History and frame log keep the latest `kept` entries: a session that chats
# for days must not grow without bound (resume covers recent gaps; the
# history endpoint pages through what is kept).
# KEYS: meta, messages, recorded, frames, tokens, attachments, answers (SessionKeys.all()).
# ARGV: id_field, message ('' for none), frame, now, ttl, kept, allowed
# (',bot,closed,' or '' for any), asked ('' or a recorded id), then meta field pairs.
_RECORD_ONCE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0, '', ''} end
local handoff = redis.call('HGET', KEYS[1], 'status') or 'bot'
local user_key = redis.call('HGET', KEYS[1], 'user_key') or ''
local since = redis.call('HGET', KEYS[1], 'bot_since') or '0'
local id = string.gsub(ARGV[1], '{epoch}', since)
local seen = redis.call('HGET', KEYS[3], id)
if seen then return {0, tonumber(seen), user_key, handoff} end
if ARGV[7] ~= '' and not string.find(ARGV[7], ',' .. handoff .. ',', 1, true) then
  return {-2, 0, user_key, handoff}
end
if ARGV[8] ~= '' and tonumber(redis.call('HGET', KEYS[3], ARGV[8]) or '0') <= tonumber(since) then
  return {-2, 0, user_key, handoff}
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[3], id, seq)
local kept = tonumber(ARGV[6])
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('LTRIM', KEYS[2], -kept, -1)
  redis.call('HINCRBY', KEYS[1], 'message_count', 1)
end
redis.call('HSET', KEYS[4], seq, ARGV[3])
if seq > kept then redis.call('HDEL', KEYS[4], seq - kept) end
redis.call('HSET', KEYS[1], 'last_activity', ARGV[4])
for i = 9, #ARGV, 2 do
  local value = ARGV[i + 1]
  if value == '{seq}' then value = seq end
  redis.call('HSET', KEYS[1], ARGV[i], value)
end
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return {1, seq, user_key, redis.call('HGET', KEYS[1], 'status') or 'bot'}
"""

# Frames are built with this placeholder and stored without it: the seq is
# known only inside the Lua step, and is put back when the log is read. They
# are built by `frame_of` from the very event the gateways turn into the live
# frame, so a replayed frame equals the live one.
# A summary replaces the stored one only if it covers more: summaries of a
# redelivered or reordered event never move memory backwards.
_NEWER_SUMMARY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'summary_upto') or '0') >= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'summary', ARGV[1], 'summary_upto', ARGV[2])
return 1
"""

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
        self._newer_summary = redis.register_script(_NEWER_SUMMARY)

    async def _record(
        self,
        session_id: str,
        id_field: str,
        message: dict[str, Any] | None,
        frame: ServerFrame,
        meta_fields: dict[str, str] | None = None,
        allowed: tuple[HandoffStatus, ...] = (),
        asked: str = "",
    ) -> Recorded | None:
        """None if the session does not exist; HandoffRefused if the guard
        (`allowed` statuses, the `asked` message's place) refuses it."""
        args: list[str | int] = [
            id_field,
            self.cipher.encrypt(message) if message is not None else "",
            self.cipher.encrypt(_logged(frame).model_dump(mode="json", exclude={"seq"})),
            utcnow().isoformat(),
            self.ttl,
            self.kept,
            f",{','.join(allowed)}," if allowed else "",
            asked,
        ]
        for name, value in (meta_fields or {}).items():
            args += [name, value]
        status, seq, user_key, handoff = await self._record_once(keys=self.keys(session_id).all(), args=args)
        if status == -1:
            return None
        if status == -2:
            raise HandoffRefused(as_text(handoff))
        # Outside the Lua step: these keys live in other hash slots (Redis Cluster).
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.active, {session_id: time.time() + self.ttl})
            if user_key:
                pipe.expire(as_text(user_key), self.ttl)
            await pipe.execute()
        if as_text(handoff) in HANDOFF:
            await self._index_handoff(session_id, as_text(handoff))
        return Recorded(new=status == 1, seq=int(seq), handoff=as_handoff(handoff))

    async def _index_handoff(self, session_id: str, handoff: str) -> None:
        """The operators' queue: sessions waiting for or with a human, by the
        time they entered it (another hash slot: kept outside the Lua step)."""
        if handoff in ("awaiting_human", "with_human"):
            await self.redis.zadd(self.handoff_index, {session_id: time.time()}, nx=True)
        else:
            await self.redis.zrem(self.handoff_index, session_id)

    async def record_user_message(self, session_id: str, message_id: str, content: str) -> Recorded | None:
        message = {"id": message_id, "role": "user", "content": content, "created_at": utcnow().isoformat()}
        frame = frame_of(MessageAccepted(session_id=session_id, message_id=message_id, seq=UNASSIGNED_SEQ))
        return await self._record(session_id, f"m:{message_id}", message, frame)

    async def record_reply(
        self, session_id: str, reply_to: str, reply: Reply, role: Role = "assistant"
    ) -> Recorded | None:
        """A bot reply (`assistant`) is fenced: refused (HandoffRefused) while a
        human has the session, and for a turn that began before the bot last
        took it over."""
        message: dict[str, Any] = {
            "id": reply.id,
            "role": role,
            "content": reply.content,
            "created_at": utcnow().isoformat(),
            "sources": [s.model_dump() for s in reply.sources],
            "reply_to": reply_to,
        }
        if reply.interrupted:
            message["interrupted"] = True
        frame = frame_of(
            ReplyRecorded(session_id=session_id, reply_to=reply_to, reply=reply, role=role, seq=UNASSIGNED_SEQ)
        )
        if role != "assistant":
            return await self._record(session_id, f"r:{reply_to}", message, frame)
        return await self._record(
            session_id, f"r:{reply_to}", message, frame, allowed=BOT_ANSWERS, asked=f"m:{reply_to}"
        )

    async def record_escalation(self, session_id: str, reason: str, reply_to: str | None) -> Recorded | None:
        """Hands the session to a human (`awaiting_human`): once per time the
        bot has it (a second escalation meanwhile is the first one again)."""
        frame = frame_of(SessionEscalated(session_id=session_id, reason=reason, reply_to=reply_to, seq=UNASSIGNED_SEQ))
        meta = {"escalated": "1", "escalation_reason": reason, "status": "awaiting_human", "operator": ""}
        return await self._record(session_id, "e:{epoch}", None, frame, meta, allowed=BOT_ANSWERS)

    async def record_summary(self, session_id: str, summary: str, upto: int) -> bool:
        """Keeps the condensed conversation up to position `upto`, unless the
        stored one covers as much already."""
        keys = [self.keys(session_id).meta]
        return bool(await self._newer_summary(keys=keys, args=[self.cipher.encrypt(summary), upto]))

    async def announced(self, session_id: str, seq: int) -> bool:
        """Whether the event of frame `seq` was published (`mark_announced`)."""
        return bool(await self.redis.hexists(self.keys(session_id).recorded, f"a:{seq}"))

    async def mark_announced(self, session_id: str, seq: int) -> None:
        """After publishing: a redelivered event finds it announced and does
        not publish again; one that failed to publish is published on retry."""
        await self.redis.hset(self.keys(session_id).recorded, f"a:{seq}", 1)  # type: ignore[misc]

    async def webhook_outcome(self, session_id: str, seq: int) -> str | None:
        """What notifying the escalation of frame `seq` came to, if it was tried."""
        value = await self.redis.hget(self.keys(session_id).recorded, f"w:{seq}")  # type: ignore[misc]
        return as_text(value) if value is not None else None

    async def record_webhook_outcome(self, session_id: str, seq: int, outcome: str) -> None:
        keys = self.keys(session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.recorded, f"w:{seq}", outcome)
            pipe.hset(keys.meta, "webhook", outcome)
            await pipe.execute()

    async def record_status(
        self,
        session_id: str,
        action_id: str,
        status: HandoffStatus,
        message: str,
        operator: str,
        allowed: tuple[HandoffStatus, ...],
    ) -> Recorded | None:
        """An operator's claim, hand-back or close, recorded once per action id;
        HandoffRefused if the session is not in an `allowed` status."""
        frame = frame_of(
            SessionStatusChanged(
                session_id=session_id, status=status, message=message, operator=operator, seq=UNASSIGNED_SEQ
            )
        )
        meta = {"status": status, "operator": operator if status == "with_human" else ""}
        if status == "bot":
            meta["bot_since"] = "{seq}"  # replies to earlier turns are fenced off
        return await self._record(session_id, f"o:{action_id}", None, frame, meta, allowed=allowed)

    async def record_agent_message(
        self, session_id: str, action_id: str, reply: Reply, operator: str
    ) -> Recorded | None:
        """A human's message; it claims a session still awaiting one."""
        message = {
            "id": reply.id,
            "role": "agent",
            "content": reply.content,
            "created_at": utcnow().isoformat(),
            "operator": operator,
        }
        frame = frame_of(
            ReplyRecorded(session_id=session_id, reply_to=reply.id, reply=reply, role="agent", seq=UNASSIGNED_SEQ)
        )
        meta = {"status": "with_human", "operator": operator}
        return await self._record(session_id, f"o:{action_id}", message, frame, meta, allowed=HUMAN_ANSWERS)
