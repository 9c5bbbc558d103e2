"""Small builders the tests share."""

from dataclasses import dataclass

import httpx
from redis.asyncio import Redis

from supportdesk_contracts.events import MessageReceived, TurnRequested
from supportdesk_gateway.app import Gateway
from supportdesk_sessions.access import GatewaySessions
from supportdesk_sessions.cipher import SessionCipher
from supportdesk_sessions.identity import IdentityVerifier
from supportdesk_sessions.recorder import SessionRecorder
from supportdesk_sessions.settings import DEVELOPMENT_ENCRYPTION_KEY


class BothOwners(GatewaySessions, SessionRecorder):
    """The gateway's named operations and the session worker's writes on one
    object, for tests that play both sides of a conversation."""


IDENTITY_SECRET = "test-identity-secret"


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
