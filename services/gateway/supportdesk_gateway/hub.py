"""Where outbound frames meet the clients this replica holds.

Every replica reads the whole outbound topic; the hub forwards each frame to
the sockets of its session on this replica and to any REST/SSE call waiting
for that turn. A socket on another replica gets the same frame from its own
hub, so a client may reconnect anywhere and resume from the frame log.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

log = logging.getLogger(__name__)

Frame = dict[str, Any]
SENT_SEQS_REMEMBERED = 1024
OPEN_TURNS_REMEMBERED = 256
# Queued to a connection to make its sender close the socket.
CLOSE_FRAME: Frame = {"type": "__close__"}
GOING_AWAY = 1001


class SlowConsumer(RuntimeError):
    """A socket's send buffer is full: the client does not read."""


class Connection:
    """One client socket's outgoing side: a bounded queue drained by the
    socket's sender task, the seqs already sent (so a frame delivered live
    and again by a resume, or re-announced after a redelivery, is sent once),
    and the turns it streams.

    Deltas are forwarded only for turns this socket saw acked, until their
    reply or error. Replicas read the outbound topic at their own pace, so a
    client that moves to another replica right after a reply could otherwise
    get the tail of a finished turn's stream after the fact."""

    def __init__(self, session_id: str, queue_size: int) -> None:
        self.session_id = session_id
        # Unbounded queue, bound enforced in offer(): a close must always fit.
        self.queue: asyncio.Queue[Frame] = asyncio.Queue()
        self.queue_size = queue_size
        self._sent: set[int] = set()
        self._order: list[int] = []
        self.overflowed = False
        self.close_code = GOING_AWAY
        # Insertion-ordered, bounded: a turn that never finishes is forgotten.
        self._streaming: dict[str, None] = {}

    def close(self, code: int) -> None:
        self.close_code = code
        self.queue.put_nowait(CLOSE_FRAME)

    def _streams(self, frame: Frame) -> bool:
        """Tracks open turns; False for a delta of a turn not open here."""
        kind = frame.get("type")
        if kind == "ack":
            self._streaming[str(frame["message_id"])] = None
            if len(self._streaming) > OPEN_TURNS_REMEMBERED:
                del self._streaming[next(iter(self._streaming))]
        elif kind == "delta":
            return str(frame.get("reply_to")) in self._streaming
        elif kind in ("reply", "error"):
            self._streaming.pop(str(frame.get("reply_to")), None)
        return True

    def offer(self, frame: Frame) -> None:
        if not self._streams(frame):
            return
        seq = frame.get("seq")
        if isinstance(seq, int) and frame.get("type") != "ack":
            if seq in self._sent:
                return
            self._sent.add(seq)
            self._order.append(seq)
            if len(self._order) > SENT_SEQS_REMEMBERED:
                self._sent.discard(self._order.pop(0))
        if self.queue.qsize() >= self.queue_size:
            self.overflowed = True
            raise SlowConsumer(self.session_id)
        self.queue.put_nowait(frame)


class Hub:
    def __init__(self, queue_size: int = 1000) -> None:
        self.queue_size = queue_size
        self._sockets: dict[str, set[Connection]] = defaultdict(set)
        self._turns: dict[tuple[str, str], set[asyncio.Queue[Frame]]] = defaultdict(set)

    @property
    def socket_count(self) -> int:
        return sum(len(c) for c in self._sockets.values())

    def connect(self, session_id: str) -> Connection:
        connection = Connection(session_id, self.queue_size)
        self._sockets[session_id].add(connection)
        return connection

    def disconnect(self, connection: Connection) -> None:
        sockets = self._sockets.get(connection.session_id)
        if sockets is not None:
            sockets.discard(connection)
            if not sockets:
                del self._sockets[connection.session_id]

    def close_all(self, code: int = GOING_AWAY) -> int:
        """Asks every socket to close (graceful shutdown); returns how many."""
        connections = [c for group in self._sockets.values() for c in group]
        for connection in connections:
            connection.close(code)
        return len(connections)

    @asynccontextmanager
    async def watch_turn(self, session_id: str, message_id: str) -> AsyncIterator[asyncio.Queue[Frame]]:
        """Frames of one turn (ack, deltas, reply or error) for a REST/SSE call.
        Enter before publishing the message, so no frame can be missed."""
        queue: asyncio.Queue[Frame] = asyncio.Queue()
        key = (session_id, message_id)
        self._turns[key].add(queue)
        try:
            yield queue
        finally:
            self._turns[key].discard(queue)
            if not self._turns[key]:
                del self._turns[key]

    def deliver(self, session_id: str, frame: Frame) -> None:
        for connection in list(self._sockets.get(session_id, ())):
            try:
                connection.offer(frame)
            except SlowConsumer:
                log.warning("socket too slow, dropping it", extra={"session_id": session_id})
                self.disconnect(connection)
        turn = frame.get("reply_to") or (frame.get("message_id") if frame.get("type") == "ack" else None)
        if turn is not None:
            for queue in self._turns.get((session_id, str(turn)), ()):
                queue.put_nowait(frame)
