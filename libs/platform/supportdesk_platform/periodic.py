"""A step a service repeats in the background while it runs (a sweep, a
reap), started and stopped by its lifecycle hooks."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Periodic:
    """Runs `step` every `interval_seconds` between `start` and `stop`. An
    error in `transient` (a store outage) skips one pass with a warning;
    anything else is a bug and is logged with its trace, and the loop goes on."""

    def __init__(
        self,
        name: str,
        interval_seconds: float,
        step: Callable[[], Awaitable[object]],
        transient: tuple[type[BaseException], ...],
    ) -> None:
        self.name = name
        self.interval = interval_seconds
        self.step = step
        self.transient = transient
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.step()
            except self.transient as exc:
                log.warning("%s skipped: %s", self.name, exc)
            # Deliberately broad: a background pass must not die silently
            # and stop sweeping for the rest of the process's life.
            except Exception:
                log.exception("%s failed", self.name)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
