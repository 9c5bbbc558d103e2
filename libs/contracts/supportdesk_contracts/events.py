"""Versioned, past-tense events. Each topic carries a discriminated union of
them (``event_type``), so a consumer decodes any of its topic's events with one
model and rejects unknown ones to the dead-letter topic.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from supportdesk_contracts.envelope import Event, SessionEvent

Channel = Literal["ws", "rest", "sse"]
Role = Literal["user", "assistant", "agent", "system"]

HandoffStatus = Literal["bot", "awaiting_human", "with_human", "closed"]
"""Who answers a session: the bot; nobody yet (escalated, waiting for a
human); a human who claimed it; or nobody (an operator closed it; the user's
next message goes to the bot again)."""


class Source(BaseModel):
    """A knowledge-base passage an answer rests on."""

    model_config = ConfigDict(frozen=True)

    document_id: str = Field(description="Document the passage comes from.")
    title: str = Field(description="Human-readable document title.", examples=["Shipping information"])
    snippet: str = Field(description="The passage text shown to the user.")
    score: float = Field(description="Retrieval similarity, 0..1.", examples=[0.71])
    ref: int | None = Field(
        default=None, description='The passage number the answer cites it by ("[2]"), as the model was shown it.'
    )
    attachment: bool = Field(
        default=False,
        description="From a file the user attached to this conversation (document_id is the attachment's id),"
        " not from the knowledge base.",
    )
    url: str | None = Field(default=None, description="Where the original document is, as its producer said.")
    metadata: dict[str, str] = Field(default_factory=dict, description="The document's labels, as its producer set.")


class HistoryTurn(BaseModel):
    """One earlier message of the conversation, as the agent sees it."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str


class Reply(BaseModel):
    """A finished answer to one user message."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Id of the assistant message.")
    content: str = Field(description="The whole answer text.")
    sources: list[Source] = Field(default_factory=list, description="Passages cited.")
    confidence: float = Field(description="How sure the agent is, 0..1.", examples=[0.82])
    escalated: bool = Field(default=False, description="Whether this turn handed the session to a human.")
    interrupted: bool = Field(
        default=False,
        description="Cut short by a newer message of the user (AGENT_DOUBLE_TEXT=interrupt): the content is what"
        " was streamed until then, possibly nothing.",
    )


# --- chat.inbound: what the session worker records -------------------------


class MessageReceived(SessionEvent):
    """A client sent a chat message to a gateway."""

    event_type: Literal["message.received"] = "message.received"
    message_id: str = Field(description="Client-chosen or gateway-assigned id; the idempotency key.")
    content: str = Field(description="The message text.", max_length=8000)
    channel: Channel = Field(description="How the client is connected.")
    gateway_id: str = Field(description="The gateway replica that received it.")


class ReplyCompleted(SessionEvent):
    """The agent finished answering a message."""

    event_type: Literal["reply.completed"] = "reply.completed"
    reply_to: str = Field(description="message_id of the user message answered.")
    reply: Reply
    escalation_reason: str | None = Field(default=None, description="Why the agent escalated, if it did.")


class TurnFailed(SessionEvent):
    """A turn could not be answered; the client gets an error instead of a hang."""

    event_type: Literal["turn.failed"] = "turn.failed"
    reply_to: str = Field(description="message_id of the user message.")
    code: str = Field(description="Machine-readable reason.", examples=["session_not_found"])
    message: str = Field(description="Human-readable reason.")


class SessionClosed(SessionEvent):
    """A client deleted a session, or it expired (announced by the session
    worker's reaper once the session's keys are gone)."""

    event_type: Literal["session.closed"] = "session.closed"
    reason: str = Field(description="Why it was closed.", examples=["deleted", "expired"])


class MemoryCondensed(SessionEvent):
    """The agent condensed older turns of a session into its summary (the
    turns that no longer fit the memory budget): kept instead of dropped."""

    event_type: Literal["memory.condensed"] = "memory.condensed"
    summary: str = Field(description="The whole summary of the conversation up to `upto`.")
    upto: int = Field(ge=0, description="Position (1-based, in the session's message count) the summary covers.")


InboundEvent = Annotated[
    MessageReceived | ReplyCompleted | SessionClosed | MemoryCondensed, Field(discriminator="event_type")
]


# --- agent.turns -----------------------------------------------------------


class TurnRequested(SessionEvent):
    """The session worker recorded a user message and asks the agent to answer it."""

    event_type: Literal["turn.requested"] = "turn.requested"
    message_id: str
    content: str
    history: list[HistoryTurn] = Field(
        default_factory=list,
        description="Earlier turns that fit the memory budget, oldest first, without this message.",
    )
    summary: str = Field(default="", description="The conversation before `history`, condensed.")
    condense: list[HistoryTurn] = Field(
        default_factory=list,
        description="Turns that left the memory budget and are not in `summary` yet: the agent adds them and"
        " answers MemoryCondensed.",
    )
    condense_upto: int = Field(default=0, ge=0, description="The position the summary covers once `condense` is in.")


# --- chat.outbound: what clients see ---------------------------------------


class MessageAccepted(SessionEvent):
    """The session worker recorded a user message (or saw it again)."""

    event_type: Literal["message.accepted"] = "message.accepted"
    message_id: str
    seq: int = Field(description="Position of this frame in the session's frame log.")
    duplicate: bool = Field(default=False, description="The message id was already recorded.")
    handoff: HandoffStatus | None = Field(
        default=None,
        description="Set when a human has the session: no bot reply follows. Live only (a replayed ack omits it).",
    )


class ReplyDeltaProduced(SessionEvent):
    """A piece of an answer being generated."""

    event_type: Literal["reply.delta"] = "reply.delta"
    reply_to: str
    index: int = Field(description="Position of this piece within the reply, from 0.")
    content: str


class ReplyRecorded(SessionEvent):
    """A finished reply was stored in the session history."""

    event_type: Literal["reply.recorded"] = "reply.recorded"
    reply_to: str
    reply: Reply
    role: Role = Field(default="assistant", description="Who answered: the bot (assistant) or a human (agent).")
    seq: int


class SessionEscalated(SessionEvent):
    """A session was handed over to a human agent."""

    event_type: Literal["session.escalated"] = "session.escalated"
    reason: str = Field(examples=["keyword: legal"])
    reply_to: str | None = None
    seq: int


class SessionStatusChanged(SessionEvent):
    """An operator claimed, handed back or closed a session."""

    event_type: Literal["session.status"] = "session.status"
    status: HandoffStatus
    message: str = Field(description="What the user is told.", examples=["Alex joined the conversation."])
    operator: str | None = Field(default=None, description="The operator who acted.")
    seq: int


EscalationEvent = Annotated[SessionEscalated | SessionStatusChanged, Field(discriminator="event_type")]
"""What the sessions.escalations topic carries: the operators' side of a handoff."""

OutboundEvent = Annotated[
    MessageAccepted | ReplyDeltaProduced | ReplyRecorded | SessionEscalated | SessionStatusChanged | TurnFailed,
    Field(discriminator="event_type"),
]


# --- documents.uploads -----------------------------------------------------

DOCUMENT_EXTENSIONS = (".pdf", ".docx", ".txt", ".md", ".html", ".htm", ".csv", ".xlsx")
"""File types the gateway accepts and the ingest worker can read."""


INLINE_CONTENT_BYTES = 700 * 1024
"""The most bytes a document may carry inline (base64 on top: under a Kafka
message's default 1 MB)."""
DOCUMENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
"""Also a path segment of the documents API: no `/`."""


class DocumentUploaded(Event):
    """A document to index: from the gateway (an operator's upload) or from
    any other producer (a CMS, a help-centre export, a data pipeline).

    Its bytes come in exactly one of three ways: `blob_key` (the gateway's
    claim check in Redis: uploads may be 10 MB, a Kafka message is capped
    near 1 MB), `content_base64` (inline, up to 700 KB), or `source` (a
    reference the ingest worker fetches: `https://` or `http://`, `file://`
    under the shared root it is configured with, or `s3://` in a bucket it
    is configured to read). Publishing the same
    `document_id` again replaces the document; the outcome is published on
    the documents.status topic. Key messages by `document_id`.
    """

    event_type: Literal["document.uploaded"] = "document.uploaded"
    document_id: str = Field(
        pattern=DOCUMENT_ID_PATTERN,
        description="The document's stable id: the same id again replaces it. The gateway derives it from the "
        "content hash; other producers choose their own (e.g. `cms:page-42`).",
        examples=["cms:returns-policy"],
    )
    filename: str = Field(
        min_length=1,
        max_length=255,
        description="Its name; the extension says the format (" + ", ".join(DOCUMENT_EXTENSIONS) + ").",
        examples=["returns-policy.html"],
    )
    content_type: str = "application/octet-stream"
    size: int | None = Field(default=None, ge=0, description="Bytes, when known; checked when given.")
    sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the bytes, when known; checked when given."
    )
    blob_key: str | None = Field(default=None, description="The gateway's: a Redis key holding the bytes.")
    content_base64: str | None = Field(
        default=None, max_length=(INLINE_CONTENT_BYTES * 4) // 3 + 4, description="The bytes, inline, base64."
    )
    source: str | None = Field(
        default=None,
        max_length=2048,
        description="Where the ingest worker fetches the bytes: https://, http://, file:// (under its shared "
        "root) or s3://bucket/key (a bucket it allows; the key not URL-encoded). Private and loopback addresses "
        "are refused unless the worker allows them.",
        examples=["https://help.example.com/export/returns-policy.html"],
    )
    title: str | None = Field(
        default=None, max_length=300, description="Shown in citations; the file name without extension when unset."
    )
    source_url: str | None = Field(
        default=None, max_length=2048, description="Where a reader finds the original; shown in citations."
    )
    metadata: dict[str, str] = Field(
        default_factory=dict,
        max_length=20,
        description="Up to 20 short labels (e.g. product, language), kept with every chunk and shown in citations.",
    )

    @model_validator(mode="after")
    def _one_way_in(self) -> "DocumentUploaded":
        given = [name for name in ("blob_key", "content_base64", "source") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"exactly one of blob_key, content_base64 and source is needed, not {given or 'none'}")
        for key, value in self.metadata.items():
            if len(key) > 64 or len(value) > 256:
                raise ValueError("metadata keys are at most 64 characters and values at most 256")
        return self


DocumentStatus = Literal["queued", "processing", "indexed", "failed"]


class DocumentStatusChanged(Event):
    """A document's indexing ended (or began): what producers of
    documents.uploads follow on documents.status, keyed by `document_id`."""

    event_type: Literal["document.status"] = "document.status"
    document_id: str
    status: DocumentStatus
    chunks: int | None = Field(default=None, description="With `indexed`: the chunks in the index.")
    error: str | None = Field(default=None, description="With `failed`: why.")


class DocumentDeleted(Event):
    """An operator removed a document; its chunks must leave the index."""

    event_type: Literal["document.deleted"] = "document.deleted"
    document_id: str


class AttachmentUploaded(SessionEvent):
    """A user attached a file to their conversation; its bytes wait, encrypted,
    in the session's own state. It is context for that session only: it is
    parsed and embedded like a document, never indexed in the knowledge base."""

    event_type: Literal["attachment.uploaded"] = "attachment.uploaded"
    attachment_id: str
    filename: str
    content_type: str
    size: int = Field(ge=0)
    sha256: str


DocumentEvent = Annotated[DocumentUploaded | DocumentDeleted | AttachmentUploaded, Field(discriminator="event_type")]


# --- deadletter ------------------------------------------------------------


class EventDeadLettered(Event):
    """A consumer gave up on an event; the raw bytes and the reason are kept."""

    event_type: Literal["event.dead_lettered"] = "event.dead_lettered"
    topic: str
    consumer: str
    reason: str
    payload: str = Field(
        description="The original message body, decoded as UTF-8 with replacement; "
        "cut at 100,000 characters to stay under the broker's message size."
    )
    payload_bytes: int = Field(default=0, ge=0, description="Size of the original body, to tell whether it was cut.")
    attempts: int = Field(
        default=1, ge=1, description="How often it was tried: more than 1 when a dependency stayed unavailable."
    )
    replayed_from: str | None = Field(
        default=None, description="The dead letter whose replay this event was (it failed again)."
    )
    key: str | None = None


class DeadLetterReplayed(Event):
    """An operator replayed a dead letter to its topic (python -m
    supportdesk_platform.deadletters replay): it is not replayed again by
    mistake."""

    event_type: Literal["dead_letter.replayed"] = "dead_letter.replayed"
    dead_letter_id: str = Field(description="event_id of the EventDeadLettered replayed.")
    topic: str


DeadLetterEvent = Annotated[EventDeadLettered | DeadLetterReplayed, Field(discriminator="event_type")]
"""What the deadletter topic carries."""
