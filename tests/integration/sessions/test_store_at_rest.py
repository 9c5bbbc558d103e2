"""The session store against the real Redis: encryption at rest, rotation,
expiry, idempotent recording."""

import asyncio

import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from builders import BothOwners, session_store
from supportdesk_contracts.events import Reply

pytestmark = pytest.mark.integration


def store(redis: Redis, prefix: str, *keys: str, ttl: int = 60) -> BothOwners:
    return session_store(redis, prefix, *keys, ttl=ttl)


async def test_contents_are_encrypted_at_rest(redis: Redis, unique: str) -> None:
    key = Fernet.generate_key().decode()
    sessions = store(redis, unique, key)
    record, _ = await sessions.create("alice@example.com")
    await sessions.record_user_message(record.session_id, "m1", "my card number is 4111")
    raw = b"".join(
        [v for k in await redis.keys(f"{unique}:*") for v in (await redis.dump(k) or b"",)]  # every byte stored
    )
    assert b"4111" not in raw
    assert b"alice@example.com" not in raw
    assert (await sessions.history(record.session_id))[0]["content"] == "my card number is 4111"


async def test_keys_rotate_without_losing_history(redis: Redis, unique: str) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    record, _ = await store(redis, unique, old).create(None)
    await store(redis, unique, old).record_user_message(record.session_id, "m1", "before rotation")
    rotated = store(redis, unique, new, old)
    await rotated.record_user_message(record.session_id, "m2", "after rotation")
    assert [m["content"] for m in await rotated.history(record.session_id)] == ["before rotation", "after rotation"]
    # Dropping the old key before re-encrypting (python -m supportdesk_sessions.rotate)
    # loses what only it can read, and nothing else.
    assert [m["content"] for m in await store(redis, unique, new).history(record.session_id)] == ["after rotation"]


async def test_recording_is_idempotent_and_seq_ordered(redis: Redis, unique: str) -> None:
    sessions = store(redis, unique, Fernet.generate_key().decode())
    record, token = await sessions.create(None)
    sid = record.session_id
    results = await asyncio.gather(*(sessions.record_user_message(sid, "same", "hi") for _ in range(20)))
    assert sum(r is not None and r.new for r in results) == 1
    assert {r.seq for r in results if r is not None} == {1}
    reply = Reply(id="r", content="hello", confidence=1.0)
    assert (await sessions.record_reply(sid, "same", reply)) is not None
    assert [(f.type, f.seq) for f in await sessions.frames_after(sid, 0)] == [("ack", 1), ("reply", 2)]
    assert [f.seq for f in await sessions.frames_after(sid, 1)] == [2]
    assert await sessions.verify_token(sid, token)
    assert not await sessions.verify_token(sid, token + "x")


async def test_idle_sessions_expire_entirely(redis: Redis, unique: str) -> None:
    sessions = store(redis, unique, Fernet.generate_key().decode(), ttl=1)
    record, _ = await sessions.create("bob")
    await sessions.record_user_message(record.session_id, "m1", "hello")
    await asyncio.sleep(2.1)
    assert await sessions.get(record.session_id) is None
    assert await redis.keys(f"{unique}:s:*") == []
    assert await sessions.record_user_message(record.session_id, "m2", "too late") is None


async def test_activity_keeps_the_users_recovery_index_alive(redis: Redis, unique: str) -> None:
    sessions = store(redis, unique, Fernet.generate_key().decode(), ttl=2)
    record, _ = await sessions.create("carol")
    for n in range(3):  # active for longer than the TTL
        await asyncio.sleep(1)
        await sessions.record_user_message(record.session_id, f"m{n}", "still here")
    recovered = await sessions.recover("carol")
    assert recovered is not None
    assert recovered[0].session_id == record.session_id
