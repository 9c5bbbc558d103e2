"""A chat turn over REST (JSON reply) or Server-Sent Events (streamed)."""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import StreamingResponse

from supportdesk_contracts.events import Channel
from supportdesk_gateway.api.deps import Context, CurrentSession
from supportdesk_gateway.api.schemas import MessageIn, MessageOut, ReplyOut
from supportdesk_gateway.context import GatewayContext
from supportdesk_gateway.hub import Frame

router = APIRouter(prefix="/api/v1/sessions/{session_id}/messages", tags=["messages"])


def checked_content(context: GatewayContext, content: str) -> str:
    text = content.strip()
    if not text:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "message content is empty")
    if len(text) > context.settings.max_message_chars:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"message longer than {context.settings.max_message_chars} characters",
        )
    return text


async def turn_frames(
    context: GatewayContext, session_id: str, message_id: str, content: str, channel: Channel
) -> AsyncIterator[Frame]:
    """Publishes the message and yields its frames until the reply or an
    error; raises TimeoutError when no frame comes within the reply timeout."""
    began = time.perf_counter()
    outcome = "timeout"
    try:
        async with context.hub.watch_turn(session_id, message_id) as frames:
            await context.events.message_received(session_id, message_id, content, channel)
            context.metrics.messages.labels(channel).inc()
            while True:
                frame = await asyncio.wait_for(frames.get(), context.settings.reply_timeout_seconds)
                if frame["type"] in ("reply", "error"):
                    outcome = frame["type"]
                yield frame
                if outcome != "timeout":
                    return
    finally:
        context.metrics.turn_seconds.labels(channel, outcome).observe(time.perf_counter() - began)


@router.post("")
async def send_message(body: MessageIn, session: CurrentSession, context: Context) -> MessageOut:
    content = checked_content(context, body.content)
    message_id = body.message_id or str(uuid.uuid4())
    try:
        async for frame in turn_frames(context, session.session_id, message_id, content, "rest"):
            if frame["type"] == "reply":
                return MessageOut(message_id=message_id, reply=ReplyOut.from_frame(frame))
            if frame["type"] == "error":
                raise HTTPException(status.HTTP_502_BAD_GATEWAY, frame["message"])
    except TimeoutError as exc:
        raise HTTPException(
            status.HTTP_504_GATEWAY_TIMEOUT, "no reply in time; fetch it later from the history"
        ) from exc
    raise HTTPException(status.HTTP_502_BAD_GATEWAY, "the turn ended without a reply")


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@router.post("/stream")
async def stream_message(body: MessageIn, session: CurrentSession, context: Context) -> StreamingResponse:
    content = checked_content(context, body.content)
    message_id = body.message_id or str(uuid.uuid4())

    async def events() -> AsyncIterator[str]:
        try:
            async for frame in turn_frames(context, session.session_id, message_id, content, "sse"):
                match frame["type"]:
                    case "ack":
                        yield sse("ack", {"message_id": message_id, "seq": frame["seq"]})
                    case "delta":
                        yield sse("delta", {"content": frame["content"], "index": frame["index"]})
                    case "reply":
                        reply = ReplyOut.from_frame(frame).model_dump()
                        yield sse("done", {"message_id": message_id, "reply": reply})
                    case "error":
                        yield sse("error", {"code": frame["code"], "message": frame["message"]})
        except TimeoutError:
            yield sse("error", {"code": "timeout", "message": "no reply in time; fetch it later from the history"})

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
