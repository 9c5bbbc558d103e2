"""Client-facing frames: what a socket may send, and the frame each outbound
event becomes. The frame log in Redis stores the same shapes, so a resumed
frame is identical to the live one."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from supportdesk_contracts.events import (
    MessageAccepted,
    ReplyDeltaProduced,
    ReplyRecorded,
    SessionEscalated,
    TurnFailed,
)


class MessageFrame(BaseModel):
    type: Literal["message"]
    content: str
    message_id: str | None = Field(default=None, max_length=128)


class PingFrame(BaseModel):
    type: Literal["ping"]


class ResumeFrame(BaseModel):
    type: Literal["resume"]
    after_seq: int = Field(ge=0)


ClientFrame = Annotated[MessageFrame | PingFrame | ResumeFrame, Field(discriminator="type")]


def error_frame(code: str, message: str, reply_to: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if reply_to is not None:
        frame["reply_to"] = reply_to
    return frame


def frame_of(
    event: MessageAccepted | ReplyDeltaProduced | ReplyRecorded | SessionEscalated | TurnFailed,
) -> dict[str, Any]:
    match event:
        case MessageAccepted():
            return {"type": "ack", "message_id": event.message_id, "seq": event.seq, "duplicate": event.duplicate}
        case ReplyDeltaProduced():
            return {"type": "delta", "reply_to": event.reply_to, "index": event.index, "content": event.content}
        case ReplyRecorded():
            return {
                "type": "reply",
                "reply_to": event.reply_to,
                "message_id": event.reply.id,
                **event.reply.model_dump(exclude={"id"}),
                "seq": event.seq,
            }
        case SessionEscalated():
            return {"type": "escalated", "reason": event.reason, "reply_to": event.reply_to, "seq": event.seq}
        case TurnFailed():
            return error_frame(event.code, event.message, event.reply_to)
