"""What reading a session gives back."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

SessionStatus = Literal["active", "escalated"]


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    user_id: str | None
    created_at: datetime
    last_activity: datetime
    message_count: int
    escalated: bool
    escalation_reason: str | None
    ttl_seconds: int
    fingerprint: str | None = None
    """The client the session is bound to (gateway `fingerprints`), if any."""

    @property
    def status(self) -> SessionStatus:
        return "escalated" if self.escalated else "active"

    @property
    def expires_at(self) -> datetime:
        return self.last_activity + timedelta(seconds=self.ttl_seconds)


@dataclass(frozen=True)
class Recorded:
    """Outcome of recording something once."""

    new: bool
    seq: int


def is_session_id(value: str | None) -> bool:
    """Session ids are UUIDs; 'undefined', '' and the like are client bugs."""
    if not value:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def utcnow() -> datetime:
    return datetime.now(UTC)
