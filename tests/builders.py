"""Small builders the tests share."""

import asyncio
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from redis.asyncio import Redis

from supportdesk_contracts.events import MessageReceived, TurnRequested
from supportdesk_gateway.app import Gateway
from supportdesk_sessions.access import GatewaySessions
from supportdesk_sessions.cipher import SessionCipher
from supportdesk_sessions.identity import IdentityVerifier
from supportdesk_sessions.recorder import SessionRecorder
from supportdesk_sessions.settings import DEVELOPMENT_ENCRYPTION_KEY

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from supportdesk_ingest.settings import IngestSettings


class BothOwners(GatewaySessions, SessionRecorder):
    """The gateway's named operations and the session worker's writes on one
    object, for tests that play both sides of a conversation."""


IDENTITY_SECRET = "test-identity-secret"
OPERATOR_KEY = "test-operator-key"


def session_store(redis: Redis, prefix: str, *keys: str, ttl: int = 60) -> BothOwners:
    cipher = SessionCipher(list(keys) or [DEVELOPMENT_ENCRYPTION_KEY])
    return BothOwners(redis, cipher, ttl, prefix, IdentityVerifier(IDENTITY_SECRET))


def received(session_id: str, message_id: str, content: str = "How long does shipping take?") -> MessageReceived:
    return MessageReceived(session_id=session_id, message_id=message_id, content=content, channel="ws", gateway_id="g1")


@dataclass
class InProcess:
    """A gateway in-process (tests/unit/gateway/conftest.py): its HTTP client and the turns its echo agent saw."""

    gateway: Gateway
    http: httpx.AsyncClient
    turns: list[TurnRequested]


@dataclass(frozen=True)
class S3Store:
    """An S3 emulator (tests/integration/ingest/conftest.py): its endpoint, a client of it and its process."""

    endpoint: str
    client: "S3Client"
    process: subprocess.Popen[bytes]


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


class Watch:
    """The longest stall of the event loop (a task ticking every 50 ms) and
    the highest RSS of this process (sampled by a thread, so that a blocked
    loop is measured too)."""

    def __init__(self) -> None:
        self.longest_gap = 0.0
        self.baseline_rss = self.peak_rss = rss()
        self.stopped = threading.Event()

    async def tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            self.longest_gap = max(self.longest_gap, time.monotonic() - last)
            last = time.monotonic()

    def sample(self) -> None:
        while not self.stopped.wait(0.01):
            self.peak_rss = max(self.peak_rss, rss())


@asynccontextmanager
async def watching() -> AsyncIterator[Watch]:
    watch = Watch()
    sampler = threading.Thread(target=watch.sample, daemon=True)
    sampler.start()
    ticker = asyncio.create_task(watch.tick())
    try:
        yield watch
    finally:
        ticker.cancel()
        watch.stopped.set()
        sampler.join()


def ingest_settings(kafka_bootstrap: str, redis_url: str, unique: str, **options: Any) -> "IngestSettings":
    """An ingest worker's settings for one test: its own topics, keys and
    group, one partition, no sample knowledge."""
    from supportdesk_ingest.settings import IngestSettings

    return IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=unique,
        kafka_partitions=1,
        redis_url=redis_url,
        redis_key_prefix=unique,
        consumer_group=f"{unique}-ingest",
        load_sample_knowledge=False,
        **options,
    )
