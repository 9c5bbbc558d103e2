"""The chat WebSocket. The socket is accepted before any check, then closed
with a specific code: a socket closed before accept reaches the browser as a
bare HTTP 403 and the reason is lost."""

import asyncio
import contextlib
import json
import logging
import uuid

from aiokafka.errors import KafkaError
from fastapi import WebSocket, WebSocketDisconnect
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

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

PATH = "/ws"
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
    frames, and a sender that runs only while the connection has frames
    waiting. An idle socket holds one task of ours (its receive loop): at
    ten thousand sockets per replica every task and queue counts."""

    def __init__(self, websocket: WebSocket, context: GatewayContext, connection: Connection) -> None:
        self.websocket = websocket
        self.context = context
        self.connection = connection
        self._sender: asyncio.Task[None] | None = None
        # Resolved when serving ends, with the error that ended it, if any.
        self._finished: asyncio.Future[BaseException | None] | None = None

    def reply(self, frame: ServerFrame) -> None:
        if isinstance(frame, ErrorFrame):
            self.context.metrics.client_errors.labels(frame.code).inc()
        self.connection.offer(frame)

    def _finish(self, error: BaseException | None = None) -> None:
        if self._finished is not None and not self._finished.done():
            self._finished.set_result(error)

    def _frames_waiting(self) -> None:
        """The connection's listener: a frame or a close request arrived."""
        if self.connection.dropped:
            self._finish()
        elif self._sender is None:
            self._sender = asyncio.create_task(self._send_waiting(), name="send")
            self._sender.add_done_callback(self._sender_ended)

    def _sender_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._finish(task.exception())

    async def _send_waiting(self) -> None:
        """Sends the waiting frames in order, then ends (the next frame starts
        another sender); a close request closes the socket."""
        try:
            while self.connection.pending:
                item = self.connection.pending.popleft()
                if isinstance(item, Close):
                    await self.websocket.close(item.code, item.reason)
                    self._finish()
                    return
                # A client whose buffers are full holds a send forever: past
                # the timeout it is dropped (1008) and may resume later.
                async with asyncio.timeout(self.context.settings.ws_send_timeout_seconds):
                    await self.websocket.send_text(item.model_dump_json())
        except (WebSocketDisconnect, RuntimeError):
            self._finish()  # the client left
        except TimeoutError:
            log.warning("socket send timed out, dropping it")
            self.connection.close(NOT_READING)  # dropped: serving ends
        finally:
            # Before any other callback runs: a frame offered from now on
            # starts a new sender.
            self._sender = None

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
        """Receives, and sends while frames wait, until the client leaves, the
        sender closes the socket, or the connection is dropped: a client that
        does not read is closed at once (1008), without waiting for it to speak."""
        self._finished = asyncio.get_running_loop().create_future()
        receiving = asyncio.create_task(self.receive_loop(), name="receive")
        receiving.add_done_callback(lambda task: self._finish(None if task.cancelled() else task.exception()))
        self.connection.listener = self._frames_waiting
        if self.connection.pending:  # offered before it was served
            self._frames_waiting()
        try:
            error = await self._finished
        finally:
            self.connection.listener = None
            tasks = [task for task in (receiving, self._sender) if task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if error is not None and not isinstance(error, SlowConsumer | WebSocketDisconnect):
            log.error("socket failed", exc_info=error)
        request = self.connection.close_request
        if self.connection.dropped and request is not None:
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


async def chat_socket(websocket: WebSocket, context: GatewayContext, session_id: str | None, token: str | None) -> None:
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


class ChatSocketRoute:
    """Serves the chat socket ahead of the app's other middleware and its
    routing (as ASGI middleware, inside RequestId: a socket's logs keep
    their request id).

    A socket lives as long as its chat, and every layer it passes through
    keeps a frame alive for it all that time: through the middleware, the
    router and FastAPI's dependency machinery that was ~12 KiB a socket, a
    third of an idle socket's cost (docs/benchmarks.md). None of those
    layers does anything for it: the other middleware pass WebSockets
    through, and the handshake's rate limit and the session checks are
    `chat_socket`'s own."""

    def __init__(self, app: ASGIApp, context: GatewayContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # As the router matches (the path includes any root_path); no
        # trailing-slash variant, as WebSocket routes have none.
        if scope["type"] == "websocket" and scope["path"] == scope.get("root_path", "") + PATH:
            websocket = WebSocket(scope, receive, send)
            query = websocket.query_params
            await chat_socket(websocket, self.context, query.get("session_id"), query.get("token"))
        else:
            await self.app(scope, receive, send)
