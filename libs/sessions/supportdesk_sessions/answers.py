"""The agent's finished answers, kept until the session worker has recorded
them: a turn delivered again (the agent restarted before committing it, or
the user sent the same message id again before the reply) is answered from
here instead of calling the LLM a second time.

They live in the session's own hash (`SessionKeys.answers`): encrypted,
renewed and purged with the session, re-encrypted by `rotate`.
"""

from redis.asyncio import Redis

from supportdesk_contracts.events import Reply
from supportdesk_sessions.cipher import SessionCipher, SessionDecryptError
from supportdesk_sessions.keys import SessionKeys

# Writes only while the session exists, with its expiry. The hash holds at
# most ARGV[3] answers: a full one is emptied before the write. Answers
# recorded long ago are all it loses (the session worker re-announces those
# itself); at worst an answer in flight is generated again.
# KEYS: meta, answers. ARGV: message id, encrypted answer, most kept.
_KEEP = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then return 0 end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) then redis.call('DEL', KEYS[2]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
"""
KEPT = 32


class FinishedAnswers:
    def __init__(self, redis: Redis, cipher: SessionCipher, prefix: str = "sd") -> None:
        self.redis = redis
        self.cipher = cipher
        self.prefix = prefix
        self._keep = redis.register_script(_KEEP)

    def _keys(self, session_id: str) -> SessionKeys:
        return SessionKeys.of(self.prefix, session_id)

    async def keep(self, session_id: str, message_id: str, reply: Reply, escalation_reason: str | None) -> None:
        keys = self._keys(session_id)
        value = self.cipher.encrypt({"reply": reply.model_dump(mode="json"), "escalation_reason": escalation_reason})
        await self._keep(keys=[keys.meta, keys.answers], args=[message_id, value, KEPT])

    async def get(self, session_id: str, message_id: str) -> tuple[Reply, str | None] | None:
        raw = await self.redis.hget(self._keys(session_id).answers, message_id)  # type: ignore[misc]
        if raw is None:
            return None
        try:
            kept = self.cipher.decrypt(raw)
        except SessionDecryptError:
            return None  # under a retired key: generated again
        return Reply.model_validate(kept["reply"]), kept["escalation_reason"]
