"""A chat turn over REST (JSON reply) or Server-Sent Events (streamed)."""

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import StreamingResponse

from supportdesk_contracts.frames import AckFrame, DeltaFrame, ErrorFrame, ReplyFrame
from supportdesk_gateway.api.deps import Context, CurrentSession
from supportdesk_gateway.api.schemas import MessageIn, MessageOut, ReplyOut
from supportdesk_gateway.turns import InvalidMessage, checked_content, turn_frames

router = APIRouter(prefix="/api/v1/sessions/{session_id}/messages", tags=["messages"])
NO_REPLY_IN_TIME = "no reply in time; fetch it later from the history"


def _content(context: Context, body: MessageIn) -> str:
    try:
        return checked_content(body.content, context.settings.max_message_chars)
    except InvalidMessage as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.message) from exc


@router.post("")
async def send_message(body: MessageIn, session: CurrentSession, context: Context) -> MessageOut:
    content = _content(context, body)
    await context.limiter.check(context.settings.message_limit, session.session_id)
    message_id = body.message_id or str(uuid.uuid4())
    try:
        async for frame in turn_frames(context, session.session_id, message_id, content, "rest"):
            if isinstance(frame, ReplyFrame):
                return MessageOut(message_id=message_id, reply=ReplyOut.from_frame(frame))
            if isinstance(frame, ErrorFrame):
                raise HTTPException(status.HTTP_502_BAD_GATEWAY, frame.message)
    except TimeoutError as exc:
        raise HTTPException(status.HTTP_504_GATEWAY_TIMEOUT, NO_REPLY_IN_TIME) from exc
    raise HTTPException(status.HTTP_502_BAD_GATEWAY, "the turn ended without a reply")


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@router.post("/stream")
async def stream_message(body: MessageIn, session: CurrentSession, context: Context) -> StreamingResponse:
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
        except TimeoutError:
            yield sse("error", {"code": "timeout", "message": NO_REPLY_IN_TIME})

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
