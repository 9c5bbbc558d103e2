"""Where outbound frames meet the clients this replica holds.

Every replica reads the whole outbound topic; the hub forwards each frame to
the sockets of its session on this replica and to any REST/SSE call waiting
for that turn. A socket on another replica gets the same frame from its own
hub, so a client may reconnect anywhere and resume from the frame log.
"""

import asyncio
import logging
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum

from supportdesk_contracts.frames import (
    AckFrame,
    DeltaFrame,
    ErrorFrame,
    EscalatedFrame,
    PongFrame,
    ReplyFrame,
    ServerFrame,
    StatusFrame,
)
from supportdesk_gateway.inbox import Inbox

log = logging.getLogger(__name__)

SENT_SEQS_REMEMBERED = 1024
OPEN_TURNS_REMEMBERED = 256
GOING_AWAY = 1001
TOO_SLOW = 1008


@dataclass(frozen=True)
class Close:
    """A request to close the socket. `urgent` closes it at once; otherwise
    the frames queued before it are sent first."""

    code: int
    reason: str
    urgent: bool = False


SHUTTING_DOWN = Close(GOING_AWAY, "server going away")
NOT_READING = Close(TOO_SLOW, "client does not read its frames", urgent=True)
SESSION_ENDED = Close(4004, "session expired or deleted", urgent=True)


class SlowConsumer(RuntimeError):
    """A socket's send queue is full: the client does not read."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"a socket of session {session_id} does not read its frames")
        self.session_id = session_id
        self.close = NOT_READING


class ConnectionState(StrEnum):
    OPEN = "open"
    CLOSING = "closing"


class Connection:
    """One client socket's outgoing side: the frames waiting to be sent
    (bounded), the seqs already sent (so a frame delivered live and again by
    a resume, or re-announced after a redelivery, is sent once), and the
    turns it streams.

    Nothing waits on an idle connection: the socket's owner sets `listener`,
    which is called whenever a frame or a close request arrives, and sends
    only while frames wait. An idle socket holds no sender task and no
    queue (ten thousand idle sockets: docs/benchmarks.md).

    Deltas are forwarded only for turns this socket saw acked, until their
    reply or error. Replicas read the outbound topic at their own pace, so a
    client that moves to another replica right after a reply could otherwise
    get the tail of a finished turn's stream after the fact."""

    def __init__(self, session_id: str, queue_size: int) -> None:
        self.session_id = session_id
        # Unbounded, bound enforced in offer(): a Close must always fit.
        self.pending: deque[ServerFrame | Close] = deque()
        self.queue_size = queue_size
        self.state = ConnectionState.OPEN
        self.close_request: Close | None = None
        self.listener: Callable[[], None] | None = None
        self._sent: set[int] = set()
        self._order: list[int] = []
        # Insertion-ordered, bounded: a turn that never finishes is forgotten.
        self._streaming: dict[str, None] = {}

    @property
    def dropped(self) -> bool:
        """An urgent close was asked: the socket's owner closes it at once,
        even while its sender is stuck on a client that does not read."""
        return self.close_request is not None and self.close_request.urgent

    def close(self, request: Close) -> None:
        """Ask the sender to close the socket; later frames are dropped."""
        if self.state is not ConnectionState.OPEN:
            return
        self.state = ConnectionState.CLOSING
        self.close_request = request
        self._put(request)

    def _put(self, item: ServerFrame | Close) -> None:
        self.pending.append(item)
        if self.listener is not None:
            self.listener()

    def _streams(self, frame: ServerFrame) -> bool:
        """Tracks open turns; False for a delta of a turn not open here."""
        match frame:
            case AckFrame():
                self._streaming[frame.message_id] = None
                if len(self._streaming) > OPEN_TURNS_REMEMBERED:
                    del self._streaming[next(iter(self._streaming))]
            case DeltaFrame():
                return frame.reply_to in self._streaming
            case ReplyFrame() | ErrorFrame():
                self._streaming.pop(str(frame.reply_to), None)
            case EscalatedFrame():
                # A human has the session: the rest of a bot answer already
                # streaming is not shown (its reply is fenced off, ledger.py).
                self._streaming.clear()
            case StatusFrame() if frame.status != "bot":
                self._streaming.clear()
        return True

    def _first_time(self, frame: ServerFrame) -> bool:
        """False for a logged frame this socket was sent already (acks of a
        repeated message id are always sent: they say `duplicate`)."""
        seq = getattr(frame, "seq", None)
        if seq is None or isinstance(frame, AckFrame):
            return True
        if seq in self._sent:
            return False
        self._sent.add(seq)
        self._order.append(seq)
        if len(self._order) > SENT_SEQS_REMEMBERED:
            self._sent.discard(self._order.pop(0))
        return True

    def offer(self, frame: ServerFrame) -> None:
        if self.state is not ConnectionState.OPEN:
            return
        if not self._streams(frame) or not self._first_time(frame):
            return
        if len(self.pending) >= self.queue_size:
            self.close(NOT_READING)
            raise SlowConsumer(self.session_id)
        self._put(frame)


class Hub:
    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._sockets: dict[str, set[Connection]] = defaultdict(set)
        self._turns: dict[tuple[str, str], set[asyncio.Queue[ServerFrame]]] = defaultdict(set)
        self.inbox = Inbox()
        """The operators' feeds: handoff frames of every session."""

    @property
    def socket_count(self) -> int:
        return sum(len(c) for c in self._sockets.values())

    def connect(self, session_id: str) -> Connection:
        connection = Connection(session_id, self.queue_size)
        self._sockets[session_id].add(connection)
        return connection

    def sockets_of(self, session_id: str) -> int:
        return len(self._sockets.get(session_id, ()))

    def session_ids(self) -> list[str]:
        return list(self._sockets)

    def end_session(self, session_id: str) -> int:
        """Closes the sockets of a session that no longer exists; returns how many."""
        connections = list(self._sockets.pop(session_id, ()))
        for connection in connections:
            connection.close(SESSION_ENDED)
        return len(connections)

    def disconnect(self, connection: Connection) -> None:
        sockets = self._sockets.get(connection.session_id)
        if sockets is not None:
            sockets.discard(connection)
            if not sockets:
                del self._sockets[connection.session_id]

    def close_all(self, request: Close = SHUTTING_DOWN) -> int:
        """Asks every socket to close (graceful shutdown); returns how many."""
        connections = [c for group in self._sockets.values() for c in group]
        for connection in connections:
            connection.close(request)
        return len(connections)

    @asynccontextmanager
    async def watch_turn(self, session_id: str, message_id: str) -> AsyncIterator[asyncio.Queue[ServerFrame]]:
        """Frames of one turn (ack, deltas, reply or error) for a REST/SSE call.
        Enter before publishing the message, so no frame can be missed."""
        queue: asyncio.Queue[ServerFrame] = asyncio.Queue()
        key = (session_id, message_id)
        self._turns[key].add(queue)
        try:
            yield queue
        finally:
            self._turns[key].discard(queue)
            if not self._turns[key]:
                del self._turns[key]

    def watching(self, session_id: str, frame: ServerFrame) -> bool:
        """Whether a REST or SSE call on this replica waits for `frame`."""
        turn = _turn_of(frame)
        return turn is not None and (session_id, turn) in self._turns

    def deliver(self, session_id: str, frame: ServerFrame) -> None:
        self.inbox.offer(session_id, frame)
        for connection in list(self._sockets.get(session_id, ())):
            try:
                connection.offer(frame)
            except SlowConsumer:
                log.warning("socket too slow, dropping it", extra={"session_id": session_id})
            if connection.state is not ConnectionState.OPEN:
                self.disconnect(connection)  # closing: it takes no more frames
        turn = _turn_of(frame)
        if turn is not None:
            for queue in self._turns.get((session_id, turn), ()):
                queue.put_nowait(frame)


def _turn_of(frame: ServerFrame) -> str | None:
    """The user message a frame belongs to, if any."""
    match frame:
        case AckFrame():
            return frame.message_id
        case DeltaFrame() | ReplyFrame() | ErrorFrame() | EscalatedFrame():
            return frame.reply_to
        case PongFrame() | StatusFrame():
            return None
