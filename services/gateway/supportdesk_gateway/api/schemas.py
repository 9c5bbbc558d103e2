"""Request and response bodies of the public REST API."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from supportdesk_contracts.events import HandoffStatus, Role, Source
from supportdesk_contracts.frames import ReplyFrame
from supportdesk_contracts.text import Text

# Found by fuzzing: Redis takes 64-bit indexes, and a larger offset came back
# as a Redis error (503). No session's history or document list is this long.
MAX_OFFSET = 1_000_000


class Problem(BaseModel):
    """Every error the API answers itself: what was wrong, in words."""

    detail: str


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblems(BaseModel):
    """A body or parameter that does not match the schema, field by field."""

    detail: list[FieldProblem]


_PROBLEMS = {
    400: "Malformed request: a body that cannot be parsed, or a malformed id.",
    401: "No bearer token (a session's token, or the admin key).",
    403: "The token or key does not open this, or the client's fingerprint does not match.",
    404: "Not found, or expired.",
    409: "Not in this state: another human has the session, nobody is waiting for one, or the conversation holds"
    " as many attachments as it may.",
    413: "The body is larger than this route accepts.",
    415: "Unsupported file type.",
    429: "Too many requests: wait the seconds in Retry-After (RateLimit-* headers say more).",
    500: "Unexpected error: the body carries a request id to quote.",
    502: "The turn failed in the agent; the message is recorded.",
    503: "A backing service is unavailable: retry after Retry-After.",
    504: "No reply in time: fetch it later from the history.",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the errors a route may answer; 422 is either
    FastAPI's field-by-field form or a Problem for a rule beyond the schema."""
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": Problem, "description": _PROBLEMS[code]} for code in codes if code != 422
    }
    if 422 in codes:
        responses[422] = {"model": ValidationProblems | Problem, "description": "Invalid input."}
    return responses


class SessionCreate(BaseModel):
    # Strict: `"is_new_chat": 0` or `"false"` is a client bug to report, not to guess.
    model_config = ConfigDict(strict=True)

    user_id: Text | None = Field(
        default=None, max_length=256, description="Counts only with a user_hash that verifies it; ignored otherwise."
    )
    user_hash: Text | None = Field(
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
    handoff: HandoffStatus = Field(description="Who answers the session now.")
    operator: str | None = Field(default=None, description="The human who has it, while with_human.")
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
    interrupted: bool = Field(default=False, description="A reply cut short by a newer message of the user.")


class MessageIn(BaseModel):
    model_config = ConfigDict(strict=True)

    content: Text = Field(min_length=1)
    message_id: Text | None = Field(default=None, min_length=1, max_length=128)


class ReplyOut(BaseModel):
    id: str
    role: Role = "assistant"
    content: str
    sources: list[Source]
    confidence: float
    escalated: bool
    interrupted: bool = Field(default=False, description="Cut short by a newer message; the newest is answered.")

    @classmethod
    def from_frame(cls, frame: ReplyFrame) -> "ReplyOut":
        return cls.model_validate({**frame.model_dump(), "id": frame.message_id})


class MessageOut(BaseModel):
    message_id: str
    reply: ReplyOut | None = Field(description="The bot's reply; null when a human has the session.")
    handoff: HandoffStatus = Field(
        default="bot", description="Who answers: with awaiting_human or with_human, a human replies later."
    )


class Escalation(BaseModel):
    """A session in the operators' queue."""

    session_id: str
    status: HandoffStatus = Field(description="awaiting_human, or with_human once claimed.")
    reason: str | None = Field(description="Why it was escalated.")
    operator: str | None = Field(description="Who has it, while with_human.")
    waiting_since: datetime | None = Field(description="When it entered the queue; null once out of it.")
    webhook: str | None = Field(description="What notifying ESCALATION_WEBHOOK_URL came to, if configured.")
    summary: str = Field(description="The user's latest message.")
    last_messages: list[HistoryMessage] = Field(description="The latest messages, oldest first.")


class OperatorMessage(BaseModel):
    model_config = ConfigDict(strict=True)

    content: Text = Field(min_length=1, max_length=8000)


class HandoffDone(BaseModel):
    session_id: str
    status: HandoffStatus
    seq: int | None = Field(description="The frame the action recorded; null if it changed nothing.")
    message_id: str | None = Field(default=None, description="With a reply: its message id.")


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
    sample: bool = Field(
        default=False,
        description="Built-in sample knowledge (a development install's), not the operator's own; removed once "
        "the first own document is indexed (SAMPLE_KNOWLEDGE_RETIRES).",
    )


class AttachmentInfo(BaseModel):
    """A file the user attached to their conversation: context for this
    session only, never part of the knowledge base."""

    attachment_id: str
    filename: str
    content_type: str
    size: int
    status: Literal["queued", "ready", "failed"] = Field(
        description="queued: being parsed; ready: the agent reads it with every question; failed: see `error`."
    )
    uploaded_at: datetime
    passages: int | None = Field(default=None, description="Passages the agent searches (when ready).")
    truncated: bool = Field(default=False, description="Only the first ATTACHMENT_MAX_PASSAGES passages are kept.")
    error: str | None = None
