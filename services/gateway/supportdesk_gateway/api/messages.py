"""A chat turn over REST (JSON reply) or Server-Sent Events (streamed)."""

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import StreamingResponse

from supportdesk_contracts.frames import AckFrame, DeltaFrame, ErrorFrame, ReplyFrame
from supportdesk_gateway.api.deps import Context, CurrentSession
from supportdesk_gateway.api.schemas import MessageIn, MessageOut, ReplyOut, problems
from supportdesk_gateway.turns import HumanAnswers, InvalidMessage, checked_content, turn_frames

router = APIRouter(
    prefix="/api/v1/sessions/{session_id}/messages",
    tags=["messages"],
    responses=problems(400, 401, 403, 404, 413, 422),
)
NO_REPLY_IN_TIME = "no reply in time; fetch it later from the history"


def _content(context: Context, body: MessageIn) -> str:
    try:
        return checked_content(body.content, context.settings.max_message_chars)
    except InvalidMessage as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.message) from exc


@router.post("", responses=problems(502, 504))
async def send_message(body: MessageIn, session: CurrentSession, context: Context) -> MessageOut:
    content = _content(context, body)
    await context.limiter.check(context.settings.message_limit, session.session_id)
    message_id = body.message_id or str(uuid.uuid4())
    try:
        async for frame in turn_frames(context, session.session_id, message_id, content, "rest"):
            if isinstance(frame, ReplyFrame):
                return MessageOut(message_id=message_id, reply=ReplyOut.from_frame(frame))
            if isinstance(frame, HumanAnswers):
                return MessageOut(message_id=message_id, reply=None, handoff=frame.status)
            if isinstance(frame, ErrorFrame):
                raise HTTPException(status.HTTP_502_BAD_GATEWAY, frame.message)
    except TimeoutError as exc:
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, NO_REPLY_IN_TIME) from exc
    raise HTTPException(status.HTTP_502_BAD_GATEWAY, "the turn ended without a reply")


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


# One event of the stream, as OpenAPI 3.2 describes text/event-stream items.
SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"enum": ["ack", "delta", "done", "error", "handoff"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "ack: {message_id, seq}; delta: {content, index}; done: {message_id, reply}; "
            "error: {code, message}; handoff: {message_id, status}: a human answers, later, on the session's "
            "sockets and history",
        },
    },
}


class EventStream(StreamingResponse):
    media_type = "text/event-stream"


@router.post(
    "/stream",
    responses={
        200: {
            "description": "`ack`, `delta`s, then `done` (or `error`) as Server-Sent Events.",
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        }
    },
)
async def stream_message(body: MessageIn, session: CurrentSession, context: Context) -> EventStream:
    content = _content(context, body)
    await context.limiter.check(context.settings.message_limit, session.session_id)
    message_id = body.message_id or str(uuid.uuid4())

    async def events() -> AsyncIterator[str]:
        try:
            async for frame in turn_frames(context, session.session_id, message_id, content, "sse"):
                match frame:
                    case AckFrame():
                        yield sse("ack", {"message_id": message_id, "seq": frame.seq})
                    case DeltaFrame():
                        yield sse("delta", {"content": frame.content, "index": frame.index})
                    case ReplyFrame():
                        yield sse("done", {"message_id": message_id, "reply": ReplyOut.from_frame(frame).model_dump()})
                    case ErrorFrame():
                        yield sse("error", {"code": frame.code, "message": frame.message})
                    case HumanAnswers():
                        yield sse("handoff", {"message_id": message_id, "status": frame.status})
        except TimeoutError:
            yield sse("error", {"code": "timeout", "message": NO_REPLY_IN_TIME})

    return EventStream(events(), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
