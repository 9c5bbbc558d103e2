"""The chat WebSocket. The socket is accepted before any check, then closed
with a specific code: a socket closed before accept reaches the browser as a
bare HTTP 403 and the reason is lost."""

import asyncio
import contextlib
import json
import logging
import uuid

from aiokafka.errors import KafkaError
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from redis.exceptions import RedisError

from supportdesk_contracts.frames import (
    CLIENT_FRAME,
    ErrorFrame,
    MessageFrame,
    PingFrame,
    PongFrame,
    ResumeFrame,
    ServerFrame,
)
from supportdesk_gateway.context import GatewayContext
from supportdesk_gateway.fingerprints import FingerprintMismatch
from supportdesk_gateway.hub import NOT_READING, Close, Connection, SlowConsumer
from supportdesk_gateway.limits import RateLimited
from supportdesk_gateway.turns import InvalidMessage, checked_content, publish_message
from supportdesk_platform.logs import bind
from supportdesk_platform.telemetry import tracer
from supportdesk_sessions.records import is_session_id

log = logging.getLogger(__name__)
router = APIRouter(tags=["websocket"])

CLOSE_BAD_SESSION_ID = 4001
CLOSE_WRONG_TOKEN = 4003
CLOSE_UNKNOWN_SESSION = 4004
CLOSE_TRY_AGAIN_LATER = 1013
MAX_FRAME_BYTES = 64 * 1024
CLOSE_TIMEOUT_SECONDS = 2.0

PROTOCOL = f"""Chat over WebSocket: `GET /ws?session_id=<id>&token=<token>`.

Client frames are `ClientFrame`, server frames `ServerFrame` (see the schemas).
Close codes: {CLOSE_BAD_SESSION_ID} missing or malformed session id,
{CLOSE_WRONG_TOKEN} wrong token (or, with FINGERPRINT_MODE=strict, another client's session),
{CLOSE_UNKNOWN_SESSION} unknown or expired session,
1001 server going away (reconnect and `resume`), 1008 the client does not read
its frames, {CLOSE_TRY_AGAIN_LATER} the session store is unavailable, the client
opens connections too fast (after an `error` frame `rate_limited`), the session
has too many sockets open or the gateway is at capacity. A socket of a session
that is deleted or expires is closed with {CLOSE_UNKNOWN_SESSION} within seconds. Frames are
limited to {MAX_FRAME_BYTES} bytes."""


class ChatSocket:
    """One accepted, authorized socket: a receive loop that handles client
    frames, and a sender task that drains the connection's queue."""

    def __init__(self, websocket: WebSocket, context: GatewayContext, connection: Connection) -> None:
        self.websocket = websocket
        self.context = context
        self.connection = connection

    def reply(self, frame: ServerFrame) -> None:
        if isinstance(frame, ErrorFrame):
            self.context.metrics.client_errors.labels(frame.code).inc()
        self.connection.offer(frame)

    async def send_loop(self) -> None:
        try:
            while True:
                item = await self.connection.queue.get()
                if isinstance(item, Close):
                    await self.websocket.close(item.code, item.reason)
                    return
                # A client whose buffers are full holds a send forever: past
                # the timeout it is dropped (1008) and may resume later.
                async with asyncio.timeout(self.context.settings.ws_send_timeout_seconds):
                    await self.websocket.send_text(item.model_dump_json())
        except (WebSocketDisconnect, RuntimeError):
            return  # the client left; the receive loop cleans up
        except TimeoutError:
            log.warning("socket send timed out, dropping it")
            self.connection.close(NOT_READING)

    async def receive_loop(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                self.reply(ErrorFrame(code="binary_not_supported", message="send JSON text frames"))
                continue
            try:
                await self.handle(raw)
            except (RedisError, KafkaError):
                # The socket stays open: the client may retry the same
                # message id once the outage is over.
                log.warning("dependency unavailable")
                self.reply(ErrorFrame(code="unavailable", message="a backing service is unavailable; retry shortly"))
            except SlowConsumer:
                # Our own answers (a resume, pongs) filled its queue: the
                # connection is being dropped; `serve` closes the socket.
                log.warning("socket too slow, dropping it")
                return

    async def serve(self) -> None:
        """Receives and sends until the client leaves, the sender closes the
        socket, or the connection is dropped: a client that does not read is
        closed at once (1008), without waiting for it to speak."""
        tasks = {
            asyncio.create_task(self.receive_loop(), name="receive"),
            asyncio.create_task(self.send_loop(), name="send"),
            asyncio.create_task(self.connection.dropped.wait(), name="dropped"),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            error = task.exception()
            if error is not None and not isinstance(error, SlowConsumer | WebSocketDisconnect):
                log.error("socket failed", exc_info=error)
        request = self.connection.close_request
        if self.connection.dropped.is_set() and request is not None:
            # The sender may be stuck on the client's full buffer: do not wait for it.
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, TimeoutError):
                await asyncio.wait_for(self.websocket.close(request.code, request.reason), CLOSE_TIMEOUT_SECONDS)

    async def handle(self, raw: str) -> None:
        if len(raw) > MAX_FRAME_BYTES:
            self.reply(ErrorFrame(code="frame_too_large", message=f"frames are limited to {MAX_FRAME_BYTES} bytes"))
            return
        try:
            frame = CLIENT_FRAME.validate_python(json.loads(raw))
        except json.JSONDecodeError:
            self.reply(ErrorFrame(code="invalid_json", message="frames must be JSON objects"))
            return
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            self.reply(ErrorFrame(code="invalid_frame", message=f"{where}: {first['msg']}" if where else first["msg"]))
            return
        session_id = self.connection.session_id
        match frame:
            case PingFrame():
                self.reply(PongFrame())
            case ResumeFrame():
                # Each resume reads and decrypts up to a hundred frames: limited like messages.
                try:
                    await self.context.limiter.check(self.context.settings.resume_limit, session_id)
                except RateLimited as exc:
                    self.reply(rate_limited_frame(exc))
                    return
                for missed in await self.context.sessions.frames_after(session_id, frame.after_seq):
                    self.connection.offer(missed)
            case MessageFrame():
                message_id = frame.message_id or str(uuid.uuid4())
                try:
                    content = checked_content(frame.content, self.context.settings.max_message_chars)
                    await self.context.limiter.check(self.context.settings.message_limit, session_id)
                except InvalidMessage as exc:
                    self.reply(ErrorFrame(code=exc.code, message=exc.message, reply_to=message_id))
                    return
                except RateLimited as exc:
                    self.reply(rate_limited_frame(exc, message_id))
                    return
                # The root of this message's trace: the socket's own lives as
                # long as the chat, so each message starts a trace of its own.
                with tracer.start_as_current_span(
                    "ws message",
                    context=Context(),
                    kind=SpanKind.SERVER,
                    attributes={"supportdesk.session_id": session_id, "messaging.message.conversation_id": message_id},
                ):
                    self.context.socket_turns.started(session_id, message_id)
                    try:
                        await publish_message(self.context, session_id, message_id, content, "ws")
                    except (RedisError, KafkaError):
                        self.context.socket_turns.discard(session_id, message_id)
                        raise


async def _authorize(websocket: WebSocket, context: GatewayContext, session_id: str | None, token: str | None) -> bool:
    """Closes the socket with the code that says what is wrong; True if it may chat."""
    if not is_session_id(session_id):
        await websocket.close(CLOSE_BAD_SESSION_ID, "missing or malformed session_id")
        return False
    assert session_id is not None
    try:
        record = await context.sessions.get(session_id)
        authorized = record is not None and bool(token) and await context.sessions.verify_token(session_id, token or "")
    except RedisError:
        await websocket.close(CLOSE_TRY_AGAIN_LATER, "session store unavailable")
        return False
    if record is None:
        await websocket.close(CLOSE_UNKNOWN_SESSION, "unknown or expired session")
        return False
    if not authorized:
        await websocket.close(CLOSE_WRONG_TOKEN, "token does not belong to this session")
        return False
    try:
        context.fingerprints.check(record.fingerprint, websocket.scope, session_id)
    except FingerprintMismatch as exc:
        await websocket.close(CLOSE_WRONG_TOKEN, str(exc))
        return False
    return True


def rate_limited_frame(exc: RateLimited, message_id: str | None = None) -> ErrorFrame:
    retry_after = exc.decision.retry_after
    return ErrorFrame(
        code="rate_limited",
        message=f"{exc}: retry in {retry_after} s",
        reply_to=message_id,
        retry_after=retry_after,
    )


@router.websocket("/ws")
async def chat_socket(websocket: WebSocket, session_id: str | None = None, token: str | None = None) -> None:
    context: GatewayContext = websocket.app.state.context
    await websocket.accept()
    try:
        # A handshake is a request of its client, like any HTTP one.
        await context.limiter.check(context.settings.request_limit, context.clients.of(websocket.scope))
    except RateLimited as exc:
        await websocket.send_text(rate_limited_frame(exc).model_dump_json())
        await websocket.close(CLOSE_TRY_AGAIN_LATER, "too many connections; retry later")
        return
    if not await _authorize(websocket, context, session_id, token):
        return
    assert session_id is not None
    bind(session_id=session_id)
    # Bounded cost per client: sockets per session, and per replica.
    if context.hub.sockets_of(session_id) >= context.settings.ws_max_per_session:
        await websocket.close(CLOSE_TRY_AGAIN_LATER, "too many sockets for this session")
        return
    if context.hub.socket_count >= context.settings.ws_max_connections:
        await websocket.close(CLOSE_TRY_AGAIN_LATER, "gateway at capacity; retry later")
        return
    connection = context.hub.connect(session_id)
    try:
        await ChatSocket(websocket, context, connection).serve()
    finally:
        context.hub.disconnect(connection)
