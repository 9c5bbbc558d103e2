import threading
from pathlib import Path
from typing import Protocol

from devstack import Stack, Supervisor

# What the operator's backend signs user ids with (identity verification).
IDENTITY_SECRET = "e2e-identity-secret"
ADMIN_KEY = "e2e-admin"


class StackFactory(Protocol):
    def __call__(self, redis_url: str, data: Path, replicas: int, **env: str) -> Stack: ...


class Supervising:
    """The supervisor ticking in a thread, as `make run`'s main loop does."""

    def __init__(self, stack: Stack, initial: float = 0.5) -> None:
        self.lines: list[str] = []
        self.supervisor = Supervisor(stack, self.lines.append, initial=initial)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.supervisor.tick()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
