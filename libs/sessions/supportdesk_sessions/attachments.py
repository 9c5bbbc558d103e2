"""Files a user attached to their conversation: context for that session
only, never part of the shared knowledge base.

They live in the session's own hash (`SessionKeys.attachments`), so they are
renewed with the session, purged with it (delete or expiry) and re-encrypted
by `rotate`. Each attachment has up to three fields, all encrypted:
`<id>` its record, `<id>:blob` the uploaded bytes until the ingest worker has
parsed them (claim check, as with documents), `<id>:passages` its text cut
into passages with their vectors, which the agent ranks against each question.
"""

import uuid
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from redis.asyncio import Redis

from supportdesk_platform.redis_values import as_text
from supportdesk_sessions.cipher import SessionCipher, SessionDecryptError
from supportdesk_sessions.keys import SessionKeys

AttachmentStatus = Literal["queued", "ready", "failed"]
BLOB = ":blob"
PASSAGES = ":passages"

# Adds fields to the session's attachments hash only while the session
# exists, with the session's own expiry (a late write must never bring a
# purged session's data back, nor keep it past the session).
# KEYS: meta, attachments. ARGV: limit of records (0: none), then field pairs;
# the first field is the record. Returns 1, 0 (no session), -1 (limit reached).
_WRITE = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then return 0 end
local limit = tonumber(ARGV[1])
if limit > 0 and redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then
  local records = 0
  for _, name in ipairs(redis.call('HKEYS', KEYS[2])) do
    if not string.find(name, ':', 1, true) then records = records + 1 end
  end
  if records >= limit then return -1 end
end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
"""


class TooManyAttachments(ValueError):
    """The session holds as many attachments as it may."""


@dataclass(frozen=True)
class AttachmentRecord:
    attachment_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    status: AttachmentStatus
    uploaded_at: str
    passages: int | None = None
    truncated: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Passage:
    """A piece of an attachment's text, and its embedding (base64 of
    little-endian float32, as `supportdesk_knowledge` encodes it)."""

    text: str
    vector: str


@dataclass(frozen=True)
class AttachedPassages:
    attachment_id: str
    filename: str
    passages: list[Passage]


def new_attachment_id() -> str:
    return str(uuid.uuid4())


def is_attachment_id(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


class SessionAttachments:
    def __init__(self, redis: Redis, cipher: SessionCipher, prefix: str = "sd") -> None:
        self.redis = redis
        self.cipher = cipher
        self.prefix = prefix
        self._write = redis.register_script(_WRITE)

    def _keys(self, session_id: str) -> SessionKeys:
        return SessionKeys.of(self.prefix, session_id)

    async def _store(self, session_id: str, fields: dict[str, str | bytes], limit: int = 0) -> bool:
        keys = self._keys(session_id)
        args: list[str | bytes | int] = [limit]
        for name, value in fields.items():
            args += [name, value]
        written = int(await self._write(keys=[keys.meta, keys.attachments], args=args))
        if written < 0:
            raise TooManyAttachments(f"a conversation holds at most {limit} attachments")
        return written == 1

    async def queue(
        self, session_id: str, filename: str, content_type: str, sha256: str, data: bytes, limit: int
    ) -> AttachmentRecord | None:
        """A new attachment waiting to be parsed; None if the session is gone,
        TooManyAttachments past `limit` (at least 1)."""
        if limit < 1:
            raise TooManyAttachments("this conversation accepts no attachments")
        record = AttachmentRecord(
            new_attachment_id(), filename, content_type, len(data), sha256, "queued", datetime.now(UTC).isoformat()
        )
        fields: dict[str, str | bytes] = {
            record.attachment_id: self.cipher.encrypt(record.as_dict()),
            record.attachment_id + BLOB: self.cipher.encrypt_bytes(data),
        }
        return record if await self._store(session_id, fields, limit) else None

    async def blob(self, session_id: str, attachment_id: str) -> bytes | None:
        raw = await self.redis.hget(self._keys(session_id).attachments, attachment_id + BLOB)  # type: ignore[misc]
        if raw is None:
            return None
        return self.cipher.decrypt_bytes(raw if isinstance(raw, bytes) else raw.encode())

    async def get(self, session_id: str, attachment_id: str) -> AttachmentRecord | None:
        if not is_attachment_id(attachment_id):
            return None  # never another field of the hash (`<id>:blob`)
        raw = await self.redis.hget(self._keys(session_id).attachments, attachment_id)  # type: ignore[misc]
        return self._record(raw)

    async def records(self, session_id: str) -> list[AttachmentRecord]:
        # The records only: never the waiting bytes (megabytes) beside them.
        key = self._keys(session_id).attachments
        names = [n for n in await self.redis.hkeys(key) if ":" not in as_text(n)]  # type: ignore[misc]
        raws = await self.redis.hmget(key, names) if names else []  # type: ignore[misc]
        records = [self._record(raw) for raw in raws]
        return sorted((r for r in records if r is not None), key=lambda r: r.uploaded_at)

    async def discard(self, session_id: str, attachment_id: str) -> None:
        """Forgets an attachment that was never announced (its event could not be published)."""
        names = [attachment_id + suffix for suffix in ("", BLOB, PASSAGES)]
        await self.redis.hdel(self._keys(session_id).attachments, *names)  # type: ignore[misc]

    def _record(self, raw: bytes | str | None) -> AttachmentRecord | None:
        if raw is None:
            return None
        try:
            return AttachmentRecord(**self.cipher.decrypt(raw))
        except SessionDecryptError:
            return None  # under a retired key: as if gone

    async def ready(self, session_id: str) -> list[str]:
        """Ids of the attachments whose passages can be searched (no decryption)."""
        names = await self.redis.hkeys(self._keys(session_id).attachments)  # type: ignore[misc]
        return sorted(as_text(n).removesuffix(PASSAGES) for n in names if as_text(n).endswith(PASSAGES))

    async def parsed(
        self, record: AttachmentRecord, session_id: str, passages: list[Passage], truncated: bool
    ) -> AttachmentRecord:
        done = replace(record, status="ready", passages=len(passages), truncated=truncated)
        fields: dict[str, str | bytes] = {
            record.attachment_id: self.cipher.encrypt(done.as_dict()),
            record.attachment_id + PASSAGES: self.cipher.encrypt([asdict(p) for p in passages]),
        }
        await self._store(session_id, fields)
        await self.redis.hdel(self._keys(session_id).attachments, record.attachment_id + BLOB)  # type: ignore[misc]
        return done

    async def failed(self, record: AttachmentRecord, session_id: str, error: str) -> AttachmentRecord:
        done = replace(record, status="failed", error=error[:500])
        await self._store(session_id, {record.attachment_id: self.cipher.encrypt(done.as_dict())})
        await self.redis.hdel(self._keys(session_id).attachments, record.attachment_id + BLOB)  # type: ignore[misc]
        return done

    async def passages(self, session_id: str, attachment_ids: list[str]) -> list[AttachedPassages]:
        """The passages of the given attachments; unreadable or gone ones are left out."""
        if not attachment_ids:
            return []
        key = self._keys(session_id).attachments
        names = [n for a in attachment_ids for n in (a, a + PASSAGES)]
        raws = await self.redis.hmget(key, names)  # type: ignore[misc]
        found = []
        for attachment_id, raw_record, raw_passages in zip(attachment_ids, raws[::2], raws[1::2], strict=True):
            record = self._record(raw_record)
            if record is None or record.status != "ready" or raw_passages is None:
                continue
            try:
                items = self.cipher.decrypt(raw_passages)
            except SessionDecryptError:
                continue
            found.append(AttachedPassages(attachment_id, record.filename, [Passage(**p) for p in items]))
        return found
