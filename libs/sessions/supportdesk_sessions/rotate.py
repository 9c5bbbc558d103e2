"""Re-encrypt every stored session value under the first of
SESSION_ENCRYPTION_KEYS, so an old key can be retired at once instead of
after every session using it has expired.

    SESSION_ENCRYPTION_KEYS=<new>,<old> python -m supportdesk_sessions.rotate
    # then deploy with SESSION_ENCRYPTION_KEYS=<new>

Safe while the services run: each session's values are rewritten in a Redis
transaction that is retried if the session worker writes meanwhile. Values no
configured key can read are counted and left alone (they are skipped when read).
"""

import asyncio
import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import WatchError

from supportdesk_platform.logs import configure_logging
from supportdesk_platform.redis_values import as_text
from supportdesk_sessions.cipher import SessionCipher, SessionDecryptError
from supportdesk_sessions.keys import SessionKeys
from supportdesk_sessions.settings import SessionStateSettings

log = logging.getLogger("supportdesk.rotate")


@dataclass
class Rotation:
    sessions: int = 0
    values: int = 0
    unreadable: int = 0


async def rotate_session(redis: Redis, cipher: SessionCipher, keys: SessionKeys, totals: Rotation) -> None:
    while True:
        try:
            async with redis.pipeline(transaction=True) as pipe:
                await pipe.watch(keys.meta, keys.messages, keys.frames, keys.attachments, keys.answers)
                user, summary = await pipe.hmget(keys.meta, ["user", "summary"])  # type: ignore[misc]
                messages = await pipe.lrange(keys.messages, 0, -1)  # type: ignore[misc]
                frames = await pipe.hgetall(keys.frames)  # type: ignore[misc]
                attachments = await pipe.hgetall(keys.attachments)  # type: ignore[misc]
                answers = await pipe.hgetall(keys.answers)  # type: ignore[misc]
                pipe.multi()  # type: ignore[no-untyped-call]
                rotated = 0
                if user is not None and (new := _rotated(cipher, user, totals)) is not None:
                    pipe.hset(keys.meta, "user", new)
                    rotated += 1
                if summary is not None and (new := _rotated(cipher, summary, totals)) is not None:
                    pipe.hset(keys.meta, "summary", new)
                    rotated += 1
                for index, raw in enumerate(messages):
                    if (new := _rotated(cipher, raw, totals)) is not None:
                        pipe.lset(keys.messages, index, new)
                        rotated += 1
                for seq, raw in frames.items():
                    if (new := _rotated(cipher, raw, totals)) is not None:
                        pipe.hset(keys.frames, as_text(seq), new)
                        rotated += 1
                for key, fields in ((keys.attachments, attachments), (keys.answers, answers)):
                    for name, raw in fields.items():
                        if (new := _rotated(cipher, raw, totals)) is not None:
                            pipe.hset(key, as_text(name), new)
                            rotated += 1
                await pipe.execute()
        except WatchError:
            continue  # written meanwhile: read it again
        totals.values += rotated
        totals.sessions += 1
        return


def _rotated(cipher: SessionCipher, raw: bytes | str, totals: Rotation) -> str | None:
    try:
        return cipher.rotate(raw)
    except SessionDecryptError:
        totals.unreadable += 1
        return None


async def rotate_all(redis: Redis, cipher: SessionCipher, prefix: str) -> Rotation:
    totals = Rotation()
    async for key in redis.scan_iter(match=f"{prefix}:s:{{*}}", count=500):
        name = as_text(key)
        if name.endswith("}"):  # the meta hash; its siblings carry a suffix
            session_id = name[len(prefix) + 4 : -1]
            await rotate_session(redis, cipher, SessionKeys.of(prefix, session_id), totals)
    return totals


def main() -> None:
    settings = SessionStateSettings()
    configure_logging("rotate", settings.log_level, settings.log_format)

    async def run() -> Rotation:
        redis = Redis.from_url(str(settings.redis_url))
        try:
            return await rotate_all(redis, SessionCipher(settings.encryption_keys), settings.redis_key_prefix)
        finally:
            await redis.aclose()

    totals = asyncio.run(run())
    log.info(
        "session data re-encrypted under the first key",
        extra={"sessions": totals.sessions, "values": totals.values, "unreadable": totals.unreadable},
    )


if __name__ == "__main__":
    main()
