"""A session's attachments in real Redis: encrypted, bounded in number, gone
with their session, and never readable through another field's name."""

import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from builders import session_store
from supportdesk_sessions.attachments import Passage, SessionAttachments, TooManyAttachments
from supportdesk_sessions.cipher import SessionCipher
from supportdesk_sessions.rotate import rotate_all
from supportdesk_sessions.settings import DEVELOPMENT_ENCRYPTION_KEY as KEY

pytestmark = pytest.mark.integration

SLIP = b"The parcel for order 7731 held a teal kayak paddle."


async def test_queued_parsed_listed_and_purged_with_the_session(redis: Redis, unique: str) -> None:
    store = session_store(redis, unique)
    session, _ = await store.create(None)
    attachments = SessionAttachments(redis, SessionCipher([KEY]), unique)
    record = await attachments.queue(session.session_id, "slip.txt", "text/plain", "sha", SLIP, limit=2)
    assert record is not None
    assert record.status == "queued"
    assert await attachments.blob(session.session_id, record.attachment_id) == SLIP
    # Encrypted at rest: neither the bytes nor the name are readable in Redis.
    raw = await redis.hgetall(store.keys(session.session_id).attachments)  # type: ignore[misc]
    assert not any(b"kayak" in v or b"slip.txt" in v for v in raw.values())
    assert await attachments.ready(session.session_id) == []

    done = await attachments.parsed(record, session.session_id, [Passage("a teal kayak paddle", "AAAA")], False)
    assert done.status == "ready"
    assert done.passages == 1
    assert await attachments.blob(session.session_id, record.attachment_id) is None  # bytes dropped once read
    assert await attachments.ready(session.session_id) == [record.attachment_id]
    (found,) = await attachments.passages(session.session_id, [record.attachment_id])
    assert found.filename == "slip.txt"
    assert found.passages[0].text == "a teal kayak paddle"
    assert [r.attachment_id for r in await attachments.records(session.session_id)] == [record.attachment_id]
    # The session's own expiry: never longer than the session's (both read at once).
    async with redis.pipeline(transaction=True) as pipe:
        pipe.pttl(store.keys(session.session_id).attachments)
        pipe.pttl(store.keys(session.session_id).meta)
        attachments_ttl, session_ttl = await pipe.execute()
    assert 0 < attachments_ttl <= session_ttl

    await store.delete(session.session_id)
    assert await attachments.records(session.session_id) == []
    assert await attachments.queue(session.session_id, "late.txt", "text/plain", "sha", SLIP, limit=2) is None
    assert not await redis.exists(store.keys(session.session_id).attachments)


async def test_a_conversation_holds_a_bounded_number(redis: Redis, unique: str) -> None:
    store = session_store(redis, unique)
    session, _ = await store.create(None)
    attachments = SessionAttachments(redis, SessionCipher([KEY]), unique)
    for name in ("one.txt", "two.txt"):
        assert await attachments.queue(session.session_id, name, "text/plain", "sha", SLIP, limit=2) is not None
    with pytest.raises(TooManyAttachments):
        await attachments.queue(session.session_id, "three.txt", "text/plain", "sha", SLIP, limit=2)
    assert len(await attachments.records(session.session_id)) == 2


async def test_only_records_are_read_by_id(redis: Redis, unique: str) -> None:
    store = session_store(redis, unique)
    session, _ = await store.create(None)
    attachments = SessionAttachments(redis, SessionCipher([KEY]), unique)
    record = await attachments.queue(session.session_id, "slip.txt", "text/plain", "sha", SLIP, limit=2)
    assert record is not None
    assert await attachments.get(session.session_id, record.attachment_id) == record
    # The bytes' field is not a record: asking for it by name finds nothing (no crash).
    assert await attachments.get(session.session_id, f"{record.attachment_id}:blob") is None
    assert await attachments.get(session.session_id, "not-an-id") is None


async def test_the_key_rotation_re_encrypts_attachments(redis: Redis, unique: str) -> None:
    old, new = KEY, Fernet.generate_key().decode()
    store = session_store(redis, unique, old)
    session, _ = await store.create(None)
    before = SessionAttachments(redis, SessionCipher([old]), unique)
    record = await before.queue(session.session_id, "slip.txt", "text/plain", "sha", SLIP, limit=2)
    assert record is not None

    await rotate_all(redis, SessionCipher([new, old]), unique)
    after = SessionAttachments(redis, SessionCipher([new]), unique)  # the old key retired
    assert await after.get(session.session_id, record.attachment_id) == record
    assert await after.blob(session.session_id, record.attachment_id) == SLIP
