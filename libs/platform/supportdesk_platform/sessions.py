"""Session state in Redis: the session record, its token hashes, the message
history and the frame log clients resume from.

Message contents, frames and user ids are encrypted at rest (Fernet; several
keys allowed so keys can be rotated: the first encrypts, all decrypt).
Every key of a session shares a hash tag, so the Lua scripts that change
several of them atomically also work on Redis Cluster, and every write renews
the inactivity TTL: an idle session disappears by itself.
"""

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from redis.asyncio import Redis

from supportdesk_contracts.events import Reply
from supportdesk_platform.redis_values import as_text

# Atomically: if the session exists and `id_field` was never recorded, take the
# next frame seq, store the frame (and the history message, if any), apply the
# extra meta fields and renew the TTL. Returns {status, seq, user_key}: status
# 1 new, 0 already recorded (seq is the original one), -1 no such session;
# user_key names the user's recovery index ('' without a user), which lives in
# another hash slot and so is renewed by the caller.
_RECORD_ONCE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0, ''} end
local seen = redis.call('HGET', KEYS[3], ARGV[1])
if seen then return {0, tonumber(seen), redis.call('HGET', KEYS[1], 'user_key') or ''} end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[3], ARGV[1], seq)
if ARGV[2] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'message_count', 1)
end
redis.call('HSET', KEYS[4], seq, ARGV[3])
redis.call('HSET', KEYS[1], 'last_activity', ARGV[4])
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return {1, seq, redis.call('HGET', KEYS[1], 'user_key') or ''}
"""

Role = Literal["user", "assistant", "agent", "system"]


class SessionDecryptError(RuntimeError):
    """Stored session data could not be decrypted with any configured key."""


class SessionCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt(self, value: Any) -> str:
        return self._fernet.encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()

    def decrypt(self, token: str | bytes) -> Any:
        raw = token.encode() if isinstance(token, str) else token
        try:
            return json.loads(self._fernet.decrypt(raw))
        except InvalidToken as exc:
            raise SessionDecryptError("session data is not readable with the configured keys") from exc


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    user_id: str | None
    created_at: datetime
    last_activity: datetime
    message_count: int
    escalated: bool
    escalation_reason: str | None
    ttl_seconds: int

    @property
    def status(self) -> str:
        return "escalated" if self.escalated else "active"

    @property
    def expires_at(self) -> datetime:
        return self.last_activity + timedelta(seconds=self.ttl_seconds)


@dataclass(frozen=True)
class Recorded:
    """Outcome of recording something once."""

    new: bool
    seq: int


def is_session_id(value: str | None) -> bool:
    """Session ids are UUIDs; 'undefined', '' and the like are client bugs."""
    if not value:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _now() -> datetime:
    return datetime.now(UTC)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    def __init__(self, redis: Redis, cipher: SessionCipher, ttl_seconds: int, prefix: str = "sd") -> None:
        self.redis = redis
        self.cipher = cipher
        self.ttl = ttl_seconds
        self.prefix = prefix
        self._record_once = redis.register_script(_RECORD_ONCE)

    # --- keys -------------------------------------------------------------

    def _keys(self, session_id: str) -> tuple[str, str, str, str, str]:
        base = f"{self.prefix}:s:{{{session_id}}}"
        return base, f"{base}:msgs", f"{base}:ids", f"{base}:frames", f"{base}:tokens"

    def _user_key(self, user_id: str) -> str:
        return f"{self.prefix}:u:{hashlib.sha256(user_id.encode()).hexdigest()}"

    # --- sessions ---------------------------------------------------------

    async def create(self, user_id: str | None) -> tuple[SessionRecord, str]:
        session_id = str(uuid.uuid4())
        token = secrets.token_urlsafe(32)
        now = _now().isoformat()
        meta, _, _, _, tokens = self._keys(session_id)
        fields: dict[str, str | int] = {"created_at": now, "last_activity": now, "message_count": 0, "seq": 0}
        if user_id is not None:
            fields["user"] = self.cipher.encrypt(user_id)
            fields["user_key"] = self._user_key(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(meta, mapping=fields)  # type: ignore[arg-type]
            pipe.sadd(tokens, _hash_token(token))
            pipe.expire(meta, self.ttl)
            pipe.expire(tokens, self.ttl)
            if user_id is not None:
                pipe.set(self._user_key(user_id), session_id, ex=self.ttl)
            await pipe.execute()
        record = await self.get(session_id)
        assert record is not None  # just written in one transaction
        return record, token

    async def recover(self, user_id: str) -> tuple[SessionRecord, str] | None:
        """The user's active session with a fresh token, or None.

        Tokens are stored only as hashes, so recovery issues an additional one.
        """
        session_id = await self.redis.get(self._user_key(user_id))
        if session_id is None:
            return None
        sid = as_text(session_id)
        record = await self.get(sid)
        if record is None or record.user_id != user_id:
            return None
        token = secrets.token_urlsafe(32)
        _, _, _, _, tokens = self._keys(sid)
        await self.redis.sadd(tokens, _hash_token(token))
        await self.redis.expire(tokens, self.ttl)
        return record, token

    async def get(self, session_id: str) -> SessionRecord | None:
        meta = self._keys(session_id)[0]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(meta)
            pipe.ttl(meta)
            raw, ttl = await pipe.execute()
        if not raw:
            return None
        fields = {as_text(k): as_text(v) for k, v in raw.items()}
        return SessionRecord(
            session_id=session_id,
            user_id=self.cipher.decrypt(fields["user"]) if "user" in fields else None,
            created_at=datetime.fromisoformat(fields["created_at"]),
            last_activity=datetime.fromisoformat(fields["last_activity"]),
            message_count=int(fields.get("message_count", 0)),
            escalated=fields.get("escalated") == "1",
            escalation_reason=fields.get("escalation_reason"),
            ttl_seconds=ttl if ttl > 0 else self.ttl,
        )

    async def verify_token(self, session_id: str, token: str) -> bool:
        tokens = self._keys(session_id)[4]
        return bool(await self.redis.sismember(tokens, _hash_token(token)))  # type: ignore[misc]

    async def delete(self, session_id: str) -> bool:
        record = await self.get(session_id)
        removed = await self.redis.delete(*self._keys(session_id))
        if record is not None and record.user_id is not None:
            user_key = self._user_key(record.user_id)
            current = await self.redis.get(user_key)
            if current is not None and as_text(current) == session_id:
                await self.redis.delete(user_key)
        return bool(removed)

    # --- turns ------------------------------------------------------------

    async def _record(
        self,
        session_id: str,
        id_field: str,
        message: dict[str, Any] | None,
        frame: dict[str, Any],
        meta_fields: dict[str, str] | None = None,
    ) -> Recorded | None:
        args: list[str | int] = [
            id_field,
            self.cipher.encrypt(message) if message is not None else "",
            self.cipher.encrypt(frame),
            _now().isoformat(),
            self.ttl,
        ]
        for name, value in (meta_fields or {}).items():
            args += [name, value]
        status, seq, user_key = await self._record_once(keys=list(self._keys(session_id)), args=args)
        if status == -1:
            return None
        if user_key:
            await self.redis.expire(as_text(user_key), self.ttl)
        return Recorded(new=status == 1, seq=int(seq))

    async def record_user_message(self, session_id: str, message_id: str, content: str) -> Recorded | None:
        message = {"id": message_id, "role": "user", "content": content, "created_at": _now().isoformat()}
        frame = {"type": "ack", "message_id": message_id}
        return await self._record(session_id, f"m:{message_id}", message, frame)

    async def record_reply(
        self, session_id: str, reply_to: str, reply: Reply, role: Role = "assistant"
    ) -> Recorded | None:
        message = {
            "id": reply.id,
            "role": role,
            "content": reply.content,
            "created_at": _now().isoformat(),
            "sources": [s.model_dump() for s in reply.sources],
            "reply_to": reply_to,
        }
        frame = {"type": "reply", "reply_to": reply_to, "message_id": reply.id, **reply.model_dump(exclude={"id"})}
        return await self._record(session_id, f"r:{reply_to}", message, frame)

    async def record_escalation(self, session_id: str, reason: str, reply_to: str | None) -> Recorded | None:
        """Marks the session escalated; only the first escalation takes a frame."""
        frame = {"type": "escalated", "reason": reason, "reply_to": reply_to}
        return await self._record(
            session_id, "e:escalated", None, frame, {"escalated": "1", "escalation_reason": reason}
        )

    async def reply_frame(self, session_id: str, reply_to: str) -> dict[str, Any] | None:
        """The recorded reply frame for a user message, if it was answered."""
        _, _, ids, frames, _ = self._keys(session_id)
        seq = await self.redis.hget(ids, f"r:{reply_to}")  # type: ignore[misc]
        if seq is None:
            return None
        raw = await self.redis.hget(frames, seq)  # type: ignore[misc]
        if raw is None:
            return None
        frame: dict[str, Any] = self.cipher.decrypt(raw)
        frame["seq"] = int(seq)
        return frame

    async def frames_after(self, session_id: str, after_seq: int, limit: int = 500) -> list[dict[str, Any]]:
        """Frames with seq > after_seq, in order: what a resuming client missed."""
        meta, _, _, frames, _ = self._keys(session_id)
        last = await self.redis.hget(meta, "seq")  # type: ignore[misc]
        if last is None:
            return []
        wanted = list(range(max(after_seq, 0) + 1, int(last) + 1))[:limit]
        if not wanted:
            return []
        raws = await self.redis.hmget(frames, wanted)  # type: ignore[misc]
        out = []
        for seq, raw in zip(wanted, raws, strict=True):
            if raw is not None:
                frame = self.cipher.decrypt(raw)
                frame["seq"] = seq
                out.append(frame)
        return out

    async def history(self, session_id: str, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        msgs = self._keys(session_id)[1]
        if limit <= 0:
            return []
        raws = await self.redis.lrange(msgs, offset, offset + limit - 1)  # type: ignore[misc]
        return [self.cipher.decrypt(raw) for raw in raws]

    async def recent_history(self, session_id: str, turns: int) -> list[dict[str, Any]]:
        msgs = self._keys(session_id)[1]
        raws = await self.redis.lrange(msgs, -turns, -1)  # type: ignore[misc]
        return [self.cipher.decrypt(raw) for raw in raws]
