"""Turn latency of WebSocket chats, as REST and SSE calls measure theirs:
from publishing the user's message to its first delta and to its reply (or
error, or a human's handoff), seen by the replica that published it."""

import time
from collections import OrderedDict
from dataclasses import dataclass

from supportdesk_contracts.frames import AckFrame, DeltaFrame, ErrorFrame, ReplyFrame, ServerFrame
from supportdesk_gateway.metrics import GatewayMetrics
from supportdesk_platform.periodic import Periodic

CHANNEL = "ws"
SWEEP_SECONDS = 1.0


@dataclass
class _Turn:
    began: float
    first_seen: bool = False


class SocketTurns:
    """The WebSocket turns this replica published and has not seen answered.
    A turn not answered within `timeout_seconds` is counted as a timeout by
    `expire` (a sweep every second: a stalled pipeline shows in the latency
    SLO at once, not when the next message comes). Bounded: past `capacity`
    turns in flight the oldest is forgotten uncounted (its age says nothing)."""

    def __init__(self, metrics: GatewayMetrics, timeout_seconds: float, capacity: int = 20_000) -> None:
        self.metrics = metrics
        self.timeout_seconds = timeout_seconds
        self.capacity = capacity
        self._turns: OrderedDict[tuple[str, str], _Turn] = OrderedDict()
        self.sweep = Periodic("websocket turn timeouts", SWEEP_SECONDS, self.expire, ())

    def started(self, session_id: str, message_id: str) -> None:
        self._turns.setdefault((session_id, message_id), _Turn(time.perf_counter()))
        while len(self._turns) > self.capacity:
            self._turns.popitem(last=False)

    def discard(self, session_id: str, message_id: str) -> None:
        """A turn whose message was not published (an outage): the client got an error frame."""
        self._turns.pop((session_id, message_id), None)

    def seen(self, session_id: str, frame: ServerFrame) -> None:
        """A frame delivered to this replica's sockets."""
        match frame:
            case DeltaFrame():
                turn = self._turns.get((session_id, frame.reply_to))
                if turn is not None and not turn.first_seen:
                    turn.first_seen = True
                    self._first_delta(turn)
            case ReplyFrame() | ErrorFrame() if frame.reply_to is not None:
                self._ended(session_id, frame.reply_to, frame.type)
            case AckFrame() if frame.handoff is not None and not frame.duplicate:
                self._ended(session_id, frame.message_id, "human")

    def _first_delta(self, turn: _Turn) -> None:
        self.metrics.first_delta_seconds.labels(CHANNEL).observe(time.perf_counter() - turn.began)

    def _ended(self, session_id: str, message_id: str, outcome: str) -> None:
        turn = self._turns.pop((session_id, message_id), None)
        if turn is None:
            return
        if not turn.first_seen and outcome == "reply":
            self._first_delta(turn)  # a reply that came whole (no deltas)
        self.metrics.turn_seconds.labels(CHANNEL, outcome).observe(time.perf_counter() - turn.began)

    async def expire(self) -> None:
        now = time.perf_counter()
        while self._turns:
            key, turn = next(iter(self._turns.items()))
            if now - turn.began < self.timeout_seconds:
                return
            del self._turns[key]
            self.metrics.turn_seconds.labels(CHANNEL, "timeout").observe(now - turn.began)

    def __len__(self) -> int:
        return len(self._turns)
