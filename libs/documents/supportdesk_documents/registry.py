"""The document registry in Redis: status of every uploaded document, and the
uploaded bytes until the ingest worker has indexed them (claim check)."""

import builtins
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Literal

from redis.asyncio import Redis

from supportdesk_platform.redis_values import as_text

Status = Literal["queued", "processing", "indexed", "failed"]
BLOB_TTL_SECONDS = 24 * 3600
# KEYS: the record, the index; ARGV: score, id, then the record's fields.
_REGISTER = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class DocumentRecord:
    document_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    status: Status
    uploaded_at: str
    updated_at: str
    chunks: int | None = None
    error: str | None = None
    sample: bool = False
    """Built-in sample knowledge, not the operator's own."""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def fields(self) -> dict[str, str | int]:
        """As stored in its Redis hash: no empty fields, no booleans."""
        stored = {k: v for k, v in self.as_dict().items() if v is not None and k != "sample"}
        if self.sample:
            stored["sample"] = 1
        return stored  # type: ignore[return-value]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class DocumentRegistry:
    def __init__(self, redis: Redis, prefix: str = "sd") -> None:
        self.redis = redis
        self.prefix = prefix

    def _key(self, document_id: str) -> str:
        return f"{self.prefix}:doc:{document_id}"

    def blob_key(self, document_id: str) -> str:
        return f"{self.prefix}:blob:{document_id}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}:docs"

    async def queue(
        self, document_id: str, filename: str, content_type: str, sha256: str, data: bytes
    ) -> DocumentRecord:
        now = _now()
        record = DocumentRecord(document_id, filename, content_type, len(data), sha256, "queued", now, now)
        fields = record.fields()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self.blob_key(document_id), data, ex=BLOB_TTL_SECONDS)
            pipe.delete(self._key(document_id))
            pipe.hset(self._key(document_id), mapping=fields)  # type: ignore[arg-type]
            pipe.zadd(self._index, {document_id: datetime.now(UTC).timestamp()})
            await pipe.execute()
        return record

    async def register_sample(self, document_id: str, filename: str, sha256: str, size: int, chunks: int) -> None:
        """Records a sample document, indexed without an upload."""
        now = _now()
        record = DocumentRecord(
            document_id, filename, "text/plain", size, sha256, "indexed", now, now, chunks, sample=True
        )
        fields = record.fields()
        await self.redis.hset(self._key(document_id), mapping=fields)  # type: ignore[arg-type,misc]
        await self.redis.zadd(self._index, {document_id: datetime.now(UTC).timestamp()})

    async def register(self, document_id: str, filename: str, content_type: str) -> bool:
        """Records a document that came without the gateway (another producer
        on the upload topic), unless it is recorded already. True if new.
        One step, so no reader ever finds half a record."""
        now = _now()
        record = DocumentRecord(document_id, filename, content_type, 0, "", "queued", now, now)
        flat = [str(item) for pair in record.fields().items() for item in pair]
        created = await self.redis.eval(  # type: ignore[misc]
            _REGISTER, 2, self._key(document_id), self._index, str(datetime.now(UTC).timestamp()), document_id, *flat
        )
        return bool(created)

    async def describe(self, document_id: str, size: int, sha256: str) -> None:
        """The size and hash of bytes that were fetched or sent inline."""
        if await self.redis.exists(self._key(document_id)):
            await self.redis.hset(self._key(document_id), mapping={"size": size, "sha256": sha256})  # type: ignore[misc]

    async def blob(self, document_id: str) -> bytes | None:
        data = await self.redis.get(self.blob_key(document_id))
        return data.encode() if isinstance(data, str) else data

    async def mark(
        self,
        document_id: str,
        status: Status,
        chunks: int | None = None,
        error: str | None = None,
        keep_bytes: bool = False,
    ) -> bool:
        """`keep_bytes`: a failure that a replay may mend (its dependency was
        down) keeps the upload's bytes until their expiry. False if the
        document is not recorded (deleted meanwhile: not resurrected)."""
        if not await self.redis.exists(self._key(document_id)):
            return False
        fields: dict[str, str | int] = {"status": status, "updated_at": _now()}
        if chunks is not None:
            fields["chunks"] = chunks
        if error is not None:
            fields["error"] = error[:500]
        await self.redis.hset(self._key(document_id), mapping=fields)  # type: ignore[arg-type,misc]
        if status != "failed" and error is None:
            await self.redis.hdel(self._key(document_id), "error")  # type: ignore[misc]  # an earlier failure's
        if status in ("indexed", "failed") and not keep_bytes:
            await self.redis.delete(self.blob_key(document_id))
        return True

    @staticmethod
    def _record(raw: dict[bytes | str, bytes | str]) -> DocumentRecord | None:
        if not raw:
            return None
        f = {as_text(k): as_text(v) for k, v in raw.items()}
        return DocumentRecord(
            document_id=f["document_id"],
            filename=f["filename"],
            content_type=f["content_type"],
            size=int(f["size"]),
            sha256=f["sha256"],
            status=f["status"],  # type: ignore[arg-type]
            uploaded_at=f["uploaded_at"],
            updated_at=f["updated_at"],
            chunks=int(f["chunks"]) if "chunks" in f else None,
            error=f.get("error"),
            sample=f.get("sample") == "1",
        )

    async def get(self, document_id: str) -> DocumentRecord | None:
        return self._record(await self.redis.hgetall(self._key(document_id)))  # type: ignore[misc]

    async def list(self, limit: int = 100, offset: int = 0) -> list[DocumentRecord]:
        ids = await self.redis.zrevrange(self._index, offset, offset + limit - 1)
        async with self.redis.pipeline(transaction=False) as pipe:
            for document_id in ids:
                if isinstance(document_id, bytes | str):  # members, not (member, score) pairs
                    pipe.hgetall(self._key(as_text(document_id)))
            raws = await pipe.execute()
        return [r for r in map(self._record, raws) if r is not None]

    async def samples(self) -> builtins.list[str]:
        """The ids of the sample documents listed."""
        found: builtins.list[str] = []
        offset = 0
        while page := await self.list(500, offset):
            found += [r.document_id for r in page if r.sample]
            offset += len(page)
        return found

    async def remove(self, document_id: str) -> bool:
        removed = await self.redis.delete(self._key(document_id), self.blob_key(document_id))
        await self.redis.zrem(self._index, document_id)
        return bool(removed)


def document_id_for(sha256: str) -> str:
    """Same content, same id: a re-upload replaces the document's chunks."""
    return str(uuid.uuid5(uuid.UUID("3d6e2b8a-1f4c-4c59-a0e7-9b2d5f8c6e14"), sha256))
