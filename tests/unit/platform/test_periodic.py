import asyncio

from redis.exceptions import ConnectionError as RedisConnectionError

from supportdesk_platform.periodic import Periodic


async def test_a_background_pass_survives_an_outage_and_a_bug() -> None:
    passes: list[str] = []
    outcomes = [RedisConnectionError("down"), ZeroDivisionError("bug"), None, None]

    async def step() -> None:
        outcome = outcomes.pop(0) if outcomes else None
        passes.append(type(outcome).__name__)
        if outcome is not None:
            raise outcome

    periodic = Periodic("test sweep", 0.01, step, (RedisConnectionError,))
    await periodic.start()
    for _ in range(100):
        if len(passes) >= 4:
            break
        await asyncio.sleep(0.01)
    await periodic.stop()
    assert passes[:4] == ["ConnectionError", "ZeroDivisionError", "NoneType", "NoneType"]
