"""Request and response bodies of the public REST API."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from supportdesk_contracts.events import Role, Source
from supportdesk_contracts.frames import ReplyFrame


class SessionCreate(BaseModel):
    user_id: str | None = Field(
        default=None, max_length=256, description="Counts only with a user_hash that verifies it; ignored otherwise."
    )
    user_hash: str | None = Field(
        default=None,
        max_length=128,
        description="Hex HMAC-SHA256 of user_id under IDENTITY_SECRET, computed by the operator's backend.",
    )
    is_new_chat: bool = False


class SessionCreated(BaseModel):
    session_id: str
    token: str = Field(description="Bearer token for every call on this session.")
    message: str = Field(description="Welcome message.")
    expires_at: datetime
    recovered: bool = False
    verified: bool = Field(default=False, description="Whether user_id was verified and the session is theirs.")


class SessionInfo(BaseModel):
    session_id: str
    status: Literal["active", "escalated"]
    created_at: datetime
    last_activity: datetime
    expires_at: datetime
    message_count: int
    escalated: bool
    escalation_reason: str | None = None


class HistoryMessage(BaseModel):
    id: str
    role: Role
    content: str
    created_at: datetime
    sources: list[Source] | None = None


class MessageIn(BaseModel):
    content: str = Field(min_length=1)
    message_id: str | None = Field(default=None, min_length=1, max_length=128)


class ReplyOut(BaseModel):
    id: str
    role: Role = "assistant"
    content: str
    sources: list[Source]
    confidence: float
    escalated: bool

    @classmethod
    def from_frame(cls, frame: ReplyFrame) -> "ReplyOut":
        return cls.model_validate({**frame.model_dump(), "id": frame.message_id})


class MessageOut(BaseModel):
    message_id: str
    reply: ReplyOut


class DocumentAccepted(BaseModel):
    document_id: str
    status: Literal["queued"] = "queued"


class DocumentInfo(BaseModel):
    document_id: str
    filename: str
    content_type: str
    size: int
    status: Literal["queued", "processing", "indexed", "failed"]
    uploaded_at: datetime
    updated_at: datetime
    chunks: int | None = None
    error: str | None = None
