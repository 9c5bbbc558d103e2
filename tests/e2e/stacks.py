from pathlib import Path
from typing import Protocol

from devstack import Stack


class StackFactory(Protocol):
    def __call__(self, redis_url: str, data: Path, replicas: int, **env: str) -> Stack: ...
