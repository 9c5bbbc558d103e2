"""What reading a session gives back."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from supportdesk_contracts.events import HandoffStatus

SessionStatus = Literal["active", "escalated"]
HANDOFF: tuple[HandoffStatus, ...] = get_args(HandoffStatus)
BOT_ANSWERS: tuple[HandoffStatus, ...] = ("bot", "closed")
"""Where the bot answers (a closed session's next message goes to the bot)."""
HUMAN_ANSWERS: tuple[HandoffStatus, ...] = ("awaiting_human", "with_human")


def as_handoff(value: object) -> HandoffStatus:
    text = value.decode() if isinstance(value, bytes) else str(value)
    for status in HANDOFF:
        if text == status:
            return status
    return "bot"


class HandoffRefused(Exception):
    """Not recorded: the session is not in a status that allows it (a bot
    reply while a human has the session, a claim of a session nobody awaits)."""

    def __init__(self, status: str) -> None:
        super().__init__(f"the session is {status}")
        self.status = as_handoff(status)


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
    handoff: HandoffStatus = "bot"
    operator: str | None = None
    """The human who claimed the session, while `with_human`."""
    webhook: str | None = None
    """What notifying the latest escalation came to (session worker `webhook`)."""

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
    handoff: HandoffStatus = "bot"
    """Who answers the session after this step."""


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
