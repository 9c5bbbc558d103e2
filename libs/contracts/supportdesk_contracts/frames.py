"""The WebSocket protocol: every frame a client may send and every frame the
server sends, as typed models (discriminated on ``type``).

One module for both paths a frame takes: the session worker stores frames in
the session's frame log (replayed on ``resume``), and every gateway turns the
outbound events it reads into frames for live delivery. Both build frames with
``frame_of``, so a replayed frame is identical to the live one.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from supportdesk_contracts.events import (
    HandoffStatus,
    MessageAccepted,
    ReplyDeltaProduced,
    ReplyRecorded,
    Role,
    SessionEscalated,
    SessionStatusChanged,
    Source,
    TurnFailed,
)
from supportdesk_contracts.text import Text


class Frame(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- client to server -------------------------------------------------------


class ClientFrameBase(BaseModel):
    # Unknown fields are ignored, so a newer client still talks to us.
    model_config = ConfigDict(frozen=True, extra="ignore")


class MessageFrame(ClientFrameBase):
    """A chat message. A repeated ``message_id`` is acknowledged again and answered once."""

    type: Literal["message"]
    content: Text = Field(description="The message text.")
    message_id: Text | None = Field(
        default=None, min_length=1, max_length=128, description="Idempotency key; the gateway assigns one when absent."
    )


class PingFrame(ClientFrameBase):
    """Keep-alive; answered with ``pong``."""

    type: Literal["ping"]


class ResumeFrame(ClientFrameBase):
    """Asks for every frame with a ``seq`` above ``after_seq`` (after a reconnect)."""

    type: Literal["resume"]
    after_seq: int = Field(ge=0, description="The highest seq the client has seen; 0 for all.")


ClientFrame = Annotated[MessageFrame | PingFrame | ResumeFrame, Field(discriminator="type")]


# --- server to client -------------------------------------------------------


class AckFrame(Frame):
    """The message was recorded, at position ``seq`` of the session's frame log."""

    type: Literal["ack"] = "ack"
    message_id: str
    seq: int = Field(description="Position in the session's frame log; resume after it.")
    duplicate: bool = Field(default=False, description="The message id was recorded before; it is answered once.")
    handoff: HandoffStatus | None = Field(
        default=None,
        description="`awaiting_human` or `with_human`: a human answers this message, the bot does not. "
        "Live only: a replayed ack omits it.",
    )


class DeltaFrame(Frame):
    """A piece of a reply being generated. Not logged: a resumed client gets the whole reply."""

    type: Literal["delta"] = "delta"
    reply_to: str = Field(description="message_id of the user message being answered.")
    index: int = Field(description="Position of this piece within the reply, from 0.")
    content: str


class ReplyFrame(Frame):
    """A finished reply, by the bot (``assistant``) or a human (``agent``)."""

    type: Literal["reply"] = "reply"
    reply_to: str
    message_id: str = Field(description="Id of the reply message.")
    role: Role = "assistant"
    content: str
    sources: list[Source] = Field(default_factory=list)
    confidence: float
    escalated: bool
    interrupted: bool = Field(default=False, description="Cut short by a newer message; the newest is answered.")
    seq: int


class EscalatedFrame(Frame):
    """The session was handed to a human."""

    type: Literal["escalated"] = "escalated"
    reason: str
    reply_to: str | None = None
    seq: int


class StatusFrame(Frame):
    """Who answers now: `with_human` (someone joined), `bot` (handed back),
    `closed`. An `escalated` frame means `awaiting_human`."""

    type: Literal["status"] = "status"
    status: HandoffStatus
    message: str = Field(description="What to show the user.")
    operator: str | None = None
    seq: int


class ErrorFrame(Frame):
    """Bad input or a failed turn; the socket stays open."""

    type: Literal["error"] = "error"
    code: str = Field(examples=["invalid_frame", "message_too_long", "rate_limited", "agent_failed", "unavailable"])
    message: str
    reply_to: str | None = Field(default=None, description="The message the error is about, if any.")
    retry_after: int | None = Field(default=None, description="With `rate_limited`: seconds before trying again.")


class PongFrame(Frame):
    type: Literal["pong"] = "pong"


ServerFrame = Annotated[
    AckFrame | DeltaFrame | ReplyFrame | EscalatedFrame | StatusFrame | ErrorFrame | PongFrame,
    Field(discriminator="type"),
]
LoggedFrame = AckFrame | ReplyFrame | EscalatedFrame | StatusFrame
"""Frames that take a seq and are kept in the session's frame log."""

CLIENT_FRAME: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
SERVER_FRAME: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)

OutboundFrameEvent = (
    MessageAccepted | ReplyDeltaProduced | ReplyRecorded | SessionEscalated | SessionStatusChanged | TurnFailed
)


def frame_of(event: OutboundFrameEvent) -> ServerFrame:
    """The frame a client sees for an outbound event, live or replayed."""
    match event:
        case MessageAccepted():
            return AckFrame(
                message_id=event.message_id, seq=event.seq, duplicate=event.duplicate, handoff=event.handoff
            )
        case ReplyDeltaProduced():
            return DeltaFrame(reply_to=event.reply_to, index=event.index, content=event.content)
        case ReplyRecorded():
            reply = event.reply
            return ReplyFrame(
                reply_to=event.reply_to,
                message_id=reply.id,
                role=event.role,
                content=reply.content,
                sources=reply.sources,
                confidence=reply.confidence,
                escalated=reply.escalated,
                interrupted=reply.interrupted,
                seq=event.seq,
            )
        case SessionEscalated():
            return EscalatedFrame(reason=event.reason, reply_to=event.reply_to, seq=event.seq)
        case SessionStatusChanged():
            return StatusFrame(status=event.status, message=event.message, operator=event.operator, seq=event.seq)
        case TurnFailed():
            return ErrorFrame(code=event.code, message=event.message, reply_to=event.reply_to)


def with_seq(frame: LoggedFrame, seq: int) -> LoggedFrame:
    return frame.model_copy(update={"seq": seq})


def frame_schemas() -> dict[str, object]:
    """JSON Schemas of both directions, for the API documents."""
    return {
        "ClientFrame": CLIENT_FRAME.json_schema(ref_template="#/components/schemas/{model}"),
        "ServerFrame": SERVER_FRAME.json_schema(ref_template="#/components/schemas/{model}"),
    }
