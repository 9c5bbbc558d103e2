"""The chat WebSocket. The socket is accepted before any check, then closed
with a specific code: a socket closed before accept reaches the browser as a
bare HTTP 403 and the reason is lost."""

import asyncio
import json
import logging
import uuid
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import TypeAdapter, ValidationError
from redis.exceptions import RedisError

from supportdesk_gateway.context import GatewayContext
from supportdesk_gateway.frames import ClientFrame, MessageFrame, PingFrame, ResumeFrame, error_frame
from supportdesk_gateway.hub import CLOSE_FRAME, Connection
from supportdesk_platform.sessions import is_session_id

log = logging.getLogger(__name__)
router = APIRouter(tags=["websocket"])

CLOSE_BAD_SESSION_ID = 4001
CLOSE_WRONG_TOKEN = 4003
CLOSE_UNKNOWN_SESSION = 4004
CLOSE_TOO_SLOW = 1008
CLOSE_TRY_AGAIN_LATER = 1013
MAX_FRAME_BYTES = 64 * 1024

_CLIENT_FRAME = TypeAdapter[ClientFrame](ClientFrame)


async def _send_loop(websocket: WebSocket, connection: Connection) -> None:
    try:
        while True:
            frame = await connection.queue.get()
            if frame is CLOSE_FRAME:
                await websocket.close(connection.close_code, "server going away")
                return
            await websocket.send_json(frame)
    except (WebSocketDisconnect, RuntimeError):
        return  # the client left; the receive loop cleans up


async def _handle(context: GatewayContext, connection: Connection, raw: str) -> None:
    def reply(frame: dict[str, Any]) -> None:
        if frame["type"] == "error":
            context.metrics.client_errors.labels(frame["code"]).inc()
        connection.offer(frame)

    if len(raw) > MAX_FRAME_BYTES:
        reply(error_frame("frame_too_large", f"frames are limited to {MAX_FRAME_BYTES} bytes"))
        return
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError:
        reply(error_frame("invalid_json", "frames must be JSON objects"))
        return
    try:
        frame = _CLIENT_FRAME.validate_python(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        reply(error_frame("invalid_frame", f"{where}: {first['msg']}" if where else first["msg"]))
        return
    session_id = connection.session_id
    match frame:
        case PingFrame():
            reply({"type": "pong"})
        case ResumeFrame():
            for missed in await context.store.frames_after(session_id, frame.after_seq):
                connection.offer(missed)
        case MessageFrame():
            content = frame.content.strip()
            message_id = frame.message_id or str(uuid.uuid4())
            if not content:
                reply(error_frame("empty_message", "message content is empty", message_id))
            elif len(content) > context.settings.max_message_chars:
                reply(
                    error_frame(
                        "message_too_long",
                        f"message longer than {context.settings.max_message_chars} characters",
                        message_id,
                    )
                )
            else:
                await context.events.message_received(session_id, message_id, content, "ws")
                context.metrics.messages.labels("ws").inc()


@router.websocket("/ws")
async def chat_socket(websocket: WebSocket, session_id: str | None = None, token: str | None = None) -> None:
    context: GatewayContext = websocket.app.state.context
    await websocket.accept()
    if not is_session_id(session_id):
        await websocket.close(CLOSE_BAD_SESSION_ID, "missing or malformed session_id")
        return
    assert session_id is not None
    try:
        known = await context.store.get(session_id) is not None
        authorized = known and bool(token) and await context.store.verify_token(session_id, token or "")
    except RedisError:
        await websocket.close(CLOSE_TRY_AGAIN_LATER, "session store unavailable")
        return
    if not known:
        await websocket.close(CLOSE_UNKNOWN_SESSION, "unknown or expired session")
        return
    if not authorized:
        await websocket.close(CLOSE_WRONG_TOKEN, "token does not belong to this session")
        return

    connection = context.hub.connect(session_id)
    sender = asyncio.create_task(_send_loop(websocket, connection))
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                connection.offer(error_frame("binary_not_supported", "send JSON text frames"))
                continue
            try:
                await _handle(context, connection, raw)
            except (RedisError, KafkaError):
                # The socket stays open: the client may retry the same
                # message id once the outage is over.
                log.warning("dependency unavailable", extra={"session_id": session_id})
                connection.offer(error_frame("unavailable", "a backing service is unavailable; retry shortly"))
            if connection.overflowed:
                await websocket.close(CLOSE_TOO_SLOW, "client does not read its frames")
                return
    except WebSocketDisconnect:
        pass
    finally:
        context.hub.disconnect(connection)
        sender.cancel()
