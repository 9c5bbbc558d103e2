"""Expiry is visible: an expired session is logged and announced once, even
with several session workers reaping at once, and the live count drops."""

import asyncio
from typing import Any

from redis.asyncio import Redis

from builders import session_store
from supportdesk_contracts.events import SessionClosed
from supportdesk_session.reaper import SessionReaper


class Announcements:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def publish(self, message: Any, *, key: bytes | None = None, no_confirm: bool = False) -> None:
        self.events.append(message)


async def test_an_expired_session_is_announced_once_across_workers(redis: Redis, unique: str) -> None:
    short, long = session_store(redis, unique, ttl=1), session_store(redis, unique, ttl=60)
    expiring, _ = await short.create(None)
    staying, _ = await long.create(None)
    assert await long.active_count() == 2
    await asyncio.sleep(2.2)
    announced = Announcements()
    workers = [SessionReaper(long, announced, interval_seconds=60) for _ in range(3)]
    counts = await asyncio.gather(*(w.reap() for w in workers))
    assert sum(counts) == 1
    assert [(e.session_id, e.reason) for e in announced.events] == [(expiring.session_id, "expired")]
    assert isinstance(announced.events[0], SessionClosed)
    assert await long.active_count() == 1
    assert workers[0].active == 1
    assert await workers[0].reap() == 0  # once
    assert staying.session_id not in {e.session_id for e in announced.events}


async def test_activity_keeps_a_session_out_of_the_reapers_hands(redis: Redis, unique: str) -> None:
    store = session_store(redis, unique, ttl=2)
    record, _ = await store.create(None)
    announced = Announcements()
    reaper = SessionReaper(store, announced, interval_seconds=60)
    for n in range(3):  # active for longer than its TTL
        await asyncio.sleep(1)
        await store.record_user_message(record.session_id, f"m{n}", "still here")
        await reaper.reap()
    assert announced.events == []
    assert await store.active_count() == 1
