"""Reading a session: its record, token check, history and frame log. Every
process may read; writes belong to `recorder` (session worker) and `access`
(the gateway's named operations)."""

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis

from supportdesk_contracts.frames import SERVER_FRAME, LoggedFrame, ReplyFrame
from supportdesk_platform.redis_values import as_text
from supportdesk_sessions.cipher import SessionCipher, SessionDecryptError
from supportdesk_sessions.keys import SessionKeys, active_index, handoff_index, hash_token
from supportdesk_sessions.records import SessionRecord, as_handoff

log = logging.getLogger(__name__)
RESUME_BATCH = 100


@dataclass(frozen=True)
class Memory:
    """What the agent may remember of a session: the summary of its older
    part and its latest messages, each with its position (1-based, counted
    over the whole session)."""

    summary: str = ""
    summary_upto: int = 0
    messages: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


class CorruptFrame(ValueError):
    """A stored frame does not match the frame protocol."""


class SessionState:
    def __init__(self, redis: Redis, cipher: SessionCipher, ttl_seconds: int, prefix: str = "sd") -> None:
        self.redis = redis
        self.cipher = cipher
        self.ttl = ttl_seconds
        self.prefix = prefix

    def keys(self, session_id: str) -> SessionKeys:
        return SessionKeys.of(self.prefix, session_id)

    @property
    def active(self) -> str:
        return active_index(self.prefix)

    @property
    def handoff_index(self) -> str:
        return handoff_index(self.prefix)

    async def handoff_queue(self, limit: int = 100) -> list[tuple[str, float]]:
        """Sessions waiting for or with a human, oldest first, with the time they entered."""
        entries = await self.redis.zrange(self.handoff_index, 0, limit - 1, withscores=True)
        return [(as_text(entry[0]), float(entry[1])) for entry in entries if isinstance(entry, tuple | list)]

    async def active_count(self) -> int:
        """Sessions that have not expired."""
        return int(await self.redis.zcount(self.active, time.time(), "+inf"))

    def _frame(self, raw: bytes | str, seq: int) -> LoggedFrame:
        """Frames are stored without their seq (Lua assigns it as it stores)."""
        try:
            frame = SERVER_FRAME.validate_python({**self.cipher.decrypt(raw), "seq": seq})
        except ValidationError as exc:
            raise CorruptFrame(f"stored frame {seq} is not a valid frame") from exc
        except SessionDecryptError as exc:
            raise CorruptFrame(f"stored frame {seq} is under a key no longer configured") from exc
        if not isinstance(frame, LoggedFrame):
            raise CorruptFrame(f"stored frame {seq} is a {frame.type} frame, which is never logged")
        return frame

    async def get(self, session_id: str) -> SessionRecord | None:
        meta = self.keys(session_id).meta
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(meta)
            pipe.ttl(meta)
            raw, ttl = await pipe.execute()
        if not raw:
            return None
        fields = {as_text(k): as_text(v) for k, v in raw.items()}
        return SessionRecord(
            session_id=session_id,
            user_id=self._user_of(session_id, fields.get("user")),
            created_at=datetime.fromisoformat(fields["created_at"]),
            last_activity=datetime.fromisoformat(fields["last_activity"]),
            message_count=int(fields.get("message_count", 0)),
            escalated=fields.get("escalated") == "1",
            escalation_reason=fields.get("escalation_reason"),
            ttl_seconds=ttl if ttl > 0 else self.ttl,
            fingerprint=fields.get("fp"),
            handoff=as_handoff(fields.get("status", "bot")),
            operator=fields.get("operator") or None,
            webhook=fields.get("webhook"),
        )

    def _user_of(self, session_id: str, encrypted: str | None) -> str | None:
        if encrypted is None:
            return None
        try:
            user_id: str = self.cipher.decrypt(encrypted)
        except SessionDecryptError:
            # The session stays usable; only recovery by user id is lost.
            log.warning("user id under a retired key", extra={"session_id": session_id})
            return None
        return user_id

    async def verify_token(self, session_id: str, token: str) -> bool:
        tokens = self.keys(session_id).tokens
        return bool(await self.redis.sismember(tokens, hash_token(token)))  # type: ignore[misc]

    async def reply_frame(self, session_id: str, reply_to: str) -> ReplyFrame | None:
        """The recorded reply frame for a user message, if it was answered."""
        keys = self.keys(session_id)
        seq = await self.redis.hget(keys.recorded, f"r:{reply_to}")  # type: ignore[misc]
        if seq is None:
            return None
        raw = await self.redis.hget(keys.frames, seq)  # type: ignore[misc]
        if raw is None:
            return None
        try:
            frame = self._frame(raw, int(seq))
        except CorruptFrame as exc:
            # Unreadable: answered again rather than never.
            log.warning("recorded reply unreadable", extra={"session_id": session_id, "reason": str(exc)})
            return None
        return frame if isinstance(frame, ReplyFrame) else None

    async def frames_after(self, session_id: str, after_seq: int, limit: int = RESUME_BATCH) -> list[LoggedFrame]:
        """Frames with seq > after_seq, in order, at most `limit` (each costs a
        decryption): what a resuming client missed. A client further behind
        resumes again from the last seq it got."""
        keys = self.keys(session_id)
        last = await self.redis.hget(keys.meta, "seq")  # type: ignore[misc]
        if last is None:
            return []
        wanted = list(range(max(after_seq, 0) + 1, int(last) + 1))[:limit]
        if not wanted:
            return []
        raws = await self.redis.hmget(keys.frames, wanted)  # type: ignore[misc]
        frames = []
        for seq, raw in zip(wanted, raws, strict=True):
            if raw is None:
                continue
            try:
                frames.append(self._frame(raw, seq))
            except CorruptFrame as exc:
                # One unreadable frame must not cost the client the rest.
                log.warning("stored frame skipped", extra={"session_id": session_id, "reason": str(exc)})
        return frames

    async def history(self, session_id: str, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        raws = await self.redis.lrange(self.keys(session_id).messages, offset, offset + limit - 1)  # type: ignore[misc]
        return self._readable(session_id, raws)

    async def recent_history(self, session_id: str, turns: int) -> list[dict[str, Any]]:
        raws = await self.redis.lrange(self.keys(session_id).messages, -turns, -1)  # type: ignore[misc]
        return self._readable(session_id, raws)

    async def memory(self, session_id: str, latest: int) -> Memory:
        """The summary and the `latest` messages, positioned."""
        keys = self.keys(session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hmget(keys.meta, ["summary", "summary_upto", "message_count"])
            pipe.lrange(keys.messages, -latest, -1)
            (summary, upto, count), raws = await pipe.execute()
        first = int(count or 0) - len(raws) + 1
        messages = []
        for position, raw in enumerate(raws, start=first):
            try:
                messages.append((position, self.cipher.decrypt(raw)))
            except SessionDecryptError:
                log.warning("stored message under a retired key skipped", extra={"session_id": session_id})
        text = ""
        if summary is not None:
            try:
                text = self.cipher.decrypt(summary)
            except SessionDecryptError:
                log.warning("summary under a retired key skipped", extra={"session_id": session_id})
                upto = None  # condensed again from what is still readable
        return Memory(text, int(upto or 0), messages)

    def _readable(self, session_id: str, raws: list[bytes | str]) -> list[dict[str, Any]]:
        """The messages the configured keys can read. One written under a key
        since retired is skipped and logged, never a failed request or turn
        (`python -m supportdesk_sessions.rotate` re-encrypts before retiring)."""
        messages = []
        for raw in raws:
            try:
                messages.append(self.cipher.decrypt(raw))
            except SessionDecryptError:
                log.warning("stored message under a retired key skipped", extra={"session_id": session_id})
        return messages
