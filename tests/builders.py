"""Small builders the tests share."""

from redis.asyncio import Redis

from supportdesk_contracts.events import MessageReceived
from supportdesk_sessions.access import GatewaySessions
from supportdesk_sessions.cipher import SessionCipher
from supportdesk_sessions.recorder import SessionRecorder
from supportdesk_sessions.settings import DEVELOPMENT_ENCRYPTION_KEY


class BothOwners(GatewaySessions, SessionRecorder):
    """The gateway's named operations and the session worker's writes on one
    object, for tests that play both sides of a conversation."""


def session_store(redis: Redis, prefix: str, *keys: str, ttl: int = 60) -> BothOwners:
    return BothOwners(redis, SessionCipher(list(keys) or [DEVELOPMENT_ENCRYPTION_KEY]), ttl, prefix)


def received(session_id: str, message_id: str, content: str = "How long does shipping take?") -> MessageReceived:
    return MessageReceived(session_id=session_id, message_id=message_id, content=content, channel="ws", gateway_id="g1")
