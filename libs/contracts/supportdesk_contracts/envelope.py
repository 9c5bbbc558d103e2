"""The fields every event carries, whatever it says."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """Base of every event: identity, time, and the causal chain.

    Consumers are idempotent on ``event_id`` or on a domain key (a message id),
    because delivery is at-least-once.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID = Field(default_factory=uuid4, description="Unique id of this event instance.")
    event_version: int = Field(default=1, description="Schema version of this event type.", examples=[1])
    occurred_at: datetime = Field(default_factory=utcnow, description="When the fact happened (UTC).")
    correlation_id: str | None = Field(
        default=None,
        description="Id shared by every event of one chat turn (the user message id).",
    )
    causation_id: UUID | None = Field(default=None, description="event_id of the event that caused this one.")

    def caused(self) -> dict[str, object]:
        """Envelope fields for an event caused by this one."""
        return {"correlation_id": self.correlation_id, "causation_id": self.event_id}


class SessionEvent(Event):
    """An event about one chat session, keyed by its id on Kafka."""

    session_id: str = Field(
        description="The chat session this event belongs to; the Kafka key.",
        examples=["4f6c1a2e-8d4b-4f0e-9a51-1b0f6a7d2c3e"],
    )

    def caused(self) -> dict[str, object]:
        return {**super().caused(), "session_id": self.session_id}
