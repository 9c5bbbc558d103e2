"""The gateway's named operations on session state: create a session, issue a
token for it (recovery), delete it. Everything else that changes a session is
the session worker's (`recorder`)."""

import secrets
import time
import uuid

from redis.asyncio import Redis

from supportdesk_platform.redis_values import as_text
from supportdesk_sessions.cipher import SessionCipher
from supportdesk_sessions.identity import IdentityVerifier
from supportdesk_sessions.keys import hash_token, user_key
from supportdesk_sessions.records import SessionRecord, utcnow
from supportdesk_sessions.state import SessionState


def new_token() -> str:
    return secrets.token_urlsafe(32)


class GatewaySessions(SessionState):
    """`user_id` arguments are verified ids (`IdentityVerifier.verified`):
    only a verified user has a recovery index."""

    def __init__(
        self,
        redis: Redis,
        cipher: SessionCipher,
        ttl_seconds: int,
        prefix: str = "sd",
        identity: IdentityVerifier | None = None,
    ) -> None:
        super().__init__(redis, cipher, ttl_seconds, prefix)
        self.identity = identity or IdentityVerifier(None)

    def user_key(self, user_id: str) -> str:
        return user_key(self.prefix, self.identity.index_digest(user_id))

    async def create(self, user_id: str | None, fingerprint: str | None = None) -> tuple[SessionRecord, str]:
        """A new session and its first token (only the token's hash is kept),
        bound to the client `fingerprint` when given."""
        session_id = str(uuid.uuid4())
        token = new_token()
        now = utcnow().isoformat()
        keys = self.keys(session_id)
        fields: dict[str, str | int] = {"created_at": now, "last_activity": now, "message_count": 0, "seq": 0}
        if fingerprint is not None:
            fields["fp"] = fingerprint
        if user_id is not None:
            fields["user"] = self.cipher.encrypt(user_id)
            fields["user_key"] = self.user_key(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.meta, mapping=fields)  # type: ignore[arg-type]
            pipe.sadd(keys.tokens, hash_token(token))
            pipe.expire(keys.meta, self.ttl)
            pipe.expire(keys.tokens, self.ttl)
            pipe.zadd(self.active, {session_id: time.time() + self.ttl})
            if user_id is not None:
                pipe.set(self.user_key(user_id), session_id, ex=self.ttl)
            await pipe.execute()
        record = await self.get(session_id)
        assert record is not None  # just written in one transaction
        return record, token

    async def issue_token(self, session_id: str) -> str:
        """An additional token for an existing session (tokens are kept only as
        hashes, so a recovered session gets a new one)."""
        token = new_token()
        tokens = self.keys(session_id).tokens
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(tokens, hash_token(token))
            pipe.expire(tokens, self.ttl)
            await pipe.execute()
        return token

    async def recover(self, user_id: str, fingerprint: str | None = None) -> tuple[SessionRecord, str] | None:
        """The user's active session with a fresh token, or None. A verified
        user may come back on another device: the binding moves there."""
        session_id = await self.redis.get(self.user_key(user_id))
        if session_id is None:
            return None
        record = await self.get(as_text(session_id))
        if record is None or record.user_id != user_id:
            return None
        if fingerprint is not None and fingerprint != record.fingerprint:
            await self.redis.hset(self.keys(record.session_id).meta, "fp", fingerprint)  # type: ignore[misc]
        return record, await self.issue_token(record.session_id)

    async def delete(self, session_id: str) -> bool:
        """Purges the session at once: its history, frames and tokens, and the
        user's recovery index if it still points here."""
        keys = self.keys(session_id)
        # The index's name as stored, not recomputed: the secret may have changed since.
        index = await self.redis.hget(keys.meta, "user_key")  # type: ignore[misc]
        removed = await self.redis.delete(*keys.all())
        await self.redis.zrem(self.active, session_id)
        if index is not None:
            current = await self.redis.get(as_text(index))
            if current is not None and as_text(current) == session_id:
                await self.redis.delete(as_text(index))
        return bool(removed)
