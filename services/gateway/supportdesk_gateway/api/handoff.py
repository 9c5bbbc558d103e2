"""The human agents' side of a handoff: the queue of sessions waiting for or
with a human, and the actions on one session (claim, reply, hand back,
close). Each action is one atomic step on the session (`SessionRecorder`),
recorded once per `Idempotency-Key`, then announced on the outbound log, so
the user's sockets on every replica, their SSE and history see it."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, status

from supportdesk_contracts.events import HandoffStatus, Reply, ReplyRecorded, SessionStatusChanged
from supportdesk_gateway.api.deps import Context, CurrentOperator
from supportdesk_gateway.api.messages import EventStream, sse
from supportdesk_gateway.api.schemas import (
    Escalation,
    HandoffDone,
    HistoryMessage,
    OperatorMessage,
    problems,
)
from supportdesk_sessions.records import HUMAN_ANSWERS, HandoffRefused, Recorded, SessionRecord, is_session_id

router = APIRouter(tags=["handoff"], responses=problems(401, 403))
ACTION_PROBLEMS = problems(400, 404, 409, 413, 422)
LAST_MESSAGES = 5
CONVERSATION_MESSAGES = 200
FEED_KEEPALIVE_SECONDS = 15

# What the user is told at each change (the operator's name goes in `{operator}`).
JOINED = "{operator} joined the conversation."
HANDED_BACK = "You're chatting with our assistant again."
CLOSED = "This conversation was closed. Write again any time."

FEED_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["ready", "escalated", "status", "ack", "reply", "resync"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=128,
        description="Repeat an action safely: the same key is recorded once and answered the same way.",
    ),
]


@router.get("/api/v1/escalations", responses=problems(422))
async def escalations(
    operator: CurrentOperator, context: Context, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[Escalation]:
    """Sessions waiting for or with a human, oldest first."""
    queue = []
    for session_id, since in await context.sessions.handoff_queue(limit):
        record = await context.sessions.get(session_id)
        if record is None or record.handoff not in HUMAN_ANSWERS:
            continue  # expired or handed back meanwhile
        queue.append(await _entry(context, record, since, LAST_MESSAGES))
    return queue


@router.get(
    "/api/v1/escalations/stream",
    responses={
        200: {
            "description": "Live: `escalated`, `status`, `ack` (a user's message while a human has the session) and"
            " `reply` (a human's) events, each `{session_id, frame}`; `resync` when the feed ends and the queue should"
            " be reloaded.",
            "content": {"text/event-stream": {"schema": FEED_EVENT}},
        }
    },
)
async def escalation_feed(operator: CurrentOperator, context: Context) -> EventStream:
    """The operators' inbox, live across every gateway replica."""

    async def events() -> AsyncIterator[str]:
        with context.hub.inbox.watch() as feed:
            yield sse("ready", {"operator": operator})
            while True:
                try:
                    update = await asyncio.wait_for(feed.get(), FEED_KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keepalive\n\n"  # proxies close idle streams
                    continue
                if update is None:
                    yield sse("resync", {})
                    return
                frame = json.loads(update.frame.model_dump_json())
                yield sse(update.frame.type, {"session_id": update.session_id, "frame": frame})

    return EventStream(events(), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/api/v1/escalations/{session_id}", responses=ACTION_PROBLEMS)
async def escalation(session_id: str, operator: CurrentOperator, context: Context) -> Escalation:
    """One session as an operator sees it: status, reason and its conversation."""
    record = await _existing(context, session_id)
    since = await context.sessions.redis.zscore(context.sessions.handoff_index, session_id)
    return await _entry(context, record, since, CONVERSATION_MESSAGES)


async def _entry(context: Context, record: SessionRecord, since: float | None, messages: int) -> Escalation:
    history = [
        HistoryMessage.model_validate(m) for m in await context.sessions.recent_history(record.session_id, messages)
    ]
    asked = [m.content for m in history if m.role == "user"]
    return Escalation(
        session_id=record.session_id,
        status=record.handoff,
        reason=record.escalation_reason,
        operator=record.operator,
        waiting_since=datetime.fromtimestamp(since, UTC) if since is not None else None,
        webhook=record.webhook,
        summary=asked[-1][:300] if asked else "",
        last_messages=history,
    )


async def _act(
    context: Context,
    session_id: str,
    action_id: str | None,
    status_to: HandoffStatus,
    message: str,
    operator: str,
    allowed: tuple[HandoffStatus, ...],
) -> HandoffDone:
    await _existing(context, session_id)
    action_id = action_id or str(uuid.uuid4())
    recorded = await _recorded(context.desk.record_status(session_id, action_id, status_to, message, operator, allowed))
    await context.events.handoff(
        SessionStatusChanged(
            session_id=session_id, status=status_to, message=message, operator=operator, seq=recorded.seq
        )
    )
    return HandoffDone(session_id=session_id, status=status_to, seq=recorded.seq)


@router.post("/api/v1/sessions/{session_id}/claim", responses=ACTION_PROBLEMS)
async def claim(
    session_id: str, operator: CurrentOperator, context: Context, idempotency_key: IdempotencyKey = None
) -> HandoffDone:
    """Take the session over (`with_human`): the bot stops answering and the
    user is told who joined. Refused (409) while another human has it."""
    record = await _existing(context, session_id)
    if record.handoff == "with_human" and record.operator == operator:
        return HandoffDone(session_id=session_id, status="with_human", seq=None)
    return await _act(
        context,
        session_id,
        idempotency_key,
        "with_human",
        JOINED.format(operator=operator),
        operator,
        ("bot", "awaiting_human", "closed"),
    )


@router.post("/api/v1/sessions/{session_id}/agent-messages", responses=ACTION_PROBLEMS)
async def agent_message(
    session_id: str,
    body: OperatorMessage,
    operator: CurrentOperator,
    context: Context,
    idempotency_key: IdempotencyKey = None,
) -> HandoffDone:
    """A human's reply (`role: "agent"`), to the user's sockets, SSE and
    history. The session must be waiting for or with a human (claim it first);
    a session still waiting is claimed by the reply."""
    await _existing(context, session_id)
    reply = Reply(id=str(uuid.uuid4()), content=body.content.strip(), sources=[], confidence=1.0)
    action_id = idempotency_key or reply.id
    recorded = await _recorded(context.desk.record_agent_message(session_id, action_id, reply, operator))
    if recorded.new:
        await context.events.handoff(
            ReplyRecorded(session_id=session_id, reply_to=reply.id, reply=reply, role="agent", seq=recorded.seq)
        )
    return HandoffDone(session_id=session_id, status="with_human", seq=recorded.seq, message_id=reply.id)


@router.post("/api/v1/sessions/{session_id}/handback", responses=ACTION_PROBLEMS)
async def handback(
    session_id: str, operator: CurrentOperator, context: Context, idempotency_key: IdempotencyKey = None
) -> HandoffDone:
    """The bot answers again, from the next message on."""
    return await _act(context, session_id, idempotency_key, "bot", HANDED_BACK, operator, HUMAN_ANSWERS)


@router.post("/api/v1/sessions/{session_id}/close", responses=ACTION_PROBLEMS)
async def close(
    session_id: str, operator: CurrentOperator, context: Context, idempotency_key: IdempotencyKey = None
) -> HandoffDone:
    """Close the conversation; it leaves the queue, and the user's next
    message goes to the bot."""
    return await _act(
        context, session_id, idempotency_key, "closed", CLOSED, operator, ("bot", "awaiting_human", "with_human")
    )


async def _existing(context: Context, session_id: str) -> SessionRecord:
    if not is_session_id(session_id):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid session id")
    record = await context.sessions.get(session_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "session not found or expired")
    return record


async def _recorded(step: Awaitable[Recorded | None]) -> Recorded:
    try:
        recorded = await step
    except HandoffRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"not now: {exc}") from exc
    if recorded is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "session not found or expired")
    return recorded
