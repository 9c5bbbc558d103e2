"""Retiring an encryption key: before, a value under a dropped key crashed
the request or left a message acknowledged and never answered, and nothing
ever re-encrypted old values, so an old key could never be dropped safely."""

from cryptography.fernet import Fernet
from redis.asyncio import Redis

from builders import session_store
from supportdesk_contracts.events import Reply
from supportdesk_sessions.cipher import SessionCipher
from supportdesk_sessions.rotate import rotate_all


async def conversation_under(redis: Redis, prefix: str, key: str) -> str:
    old = session_store(redis, prefix, key)
    record, _ = await old.create("carol")
    await old.record_user_message(record.session_id, "m1", "Where is my order?")
    await old.record_reply(record.session_id, "m1", Reply(id="r1", content="It ships today.", confidence=0.9))
    return record.session_id


async def test_values_under_a_dropped_key_are_skipped_not_fatal(redis: Redis, unique: str) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sid = await conversation_under(redis, unique, old)
    store = session_store(redis, unique, new)  # the old key dropped too early
    record = await store.get(sid)
    assert record is not None
    assert record.user_id is None  # recovery by user is lost, the session is not
    assert await store.history(sid) == []
    assert await store.recent_history(sid, 10) == []  # the next turn is still asked for
    assert await store.frames_after(sid, 0) == []
    assert await store.reply_frame(sid, "m1") is None
    # New activity is readable.
    await store.record_user_message(sid, "m2", "Hello?")
    assert [m["content"] for m in await store.history(sid)] == ["Hello?"]


async def test_rotation_re_encrypts_so_the_old_key_can_be_retired(redis: Redis, unique: str) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sid = await conversation_under(redis, unique, old)
    totals = await rotate_all(redis, SessionCipher([new, old]), unique)
    assert (totals.sessions, totals.unreadable) == (1, 0)
    assert totals.values == 5  # the user id, two messages, two frames
    store = session_store(redis, unique, new)  # the old key retired
    record = await store.get(sid)
    assert record is not None
    assert record.user_id == "carol"
    assert [m["content"] for m in await store.history(sid)] == ["Where is my order?", "It ships today."]
    assert [f.type for f in await store.frames_after(sid, 0)] == ["ack", "reply"]
    reply = await store.reply_frame(sid, "m1")
    assert reply is not None
    assert reply.content == "It ships today."


async def test_history_and_frame_log_keep_the_latest_entries_only(redis: Redis, unique: str) -> None:
    """A session that chats for days must not grow without bound."""
    store = session_store(redis, unique)
    store.kept = 10
    record, _ = await store.create(None)
    for n in range(25):
        await store.record_user_message(record.session_id, f"m{n}", f"message {n}")
    assert [m["content"] for m in await store.history(record.session_id, 100)] == [
        f"message {n}" for n in range(15, 25)
    ]
    assert await redis.hlen(store.keys(record.session_id).frames) == 10  # type: ignore[misc]
    assert [f.seq for f in await store.frames_after(record.session_id, 0)] == list(range(16, 26))
    again = await store.record_user_message(record.session_id, "m3", "message 3")  # still answered once
    assert again is not None
    assert not again.new
