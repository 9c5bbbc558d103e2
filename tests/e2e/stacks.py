from pathlib import Path
from typing import Protocol

from devstack import Stack

# What the operator's backend signs user ids with (identity verification).
IDENTITY_SECRET = "e2e-identity-secret"
ADMIN_KEY = "e2e-admin"


class StackFactory(Protocol):
    def __call__(self, redis_url: str, data: Path, replicas: int, **env: str) -> Stack: ...
