"""The operators' live feed. Every replica reads every outbound event (relay),
so each sees every handoff change, whichever replica or worker made it, and
passes it to the operators whose feed it serves."""

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from supportdesk_contracts.frames import AckFrame, EscalatedFrame, ReplyFrame, ServerFrame, StatusFrame

FEED_QUEUE = 1000


@dataclass(frozen=True)
class InboxUpdate:
    session_id: str
    frame: ServerFrame


def concerns_operators(frame: ServerFrame) -> bool:
    """Escalations, status changes, human replies, and the user's messages
    while a human has the session."""
    match frame:
        case EscalatedFrame() | StatusFrame():
            return True
        case ReplyFrame():
            return frame.role == "agent"
        case AckFrame():
            return frame.handoff is not None
    return False


class Inbox:
    def __init__(self, queue_size: int = FEED_QUEUE) -> None:
        self.queue_size = queue_size
        self._feeds: set[asyncio.Queue[InboxUpdate | None]] = set()

    @property
    def feeds(self) -> int:
        return len(self._feeds)

    @contextlib.contextmanager
    def watch(self) -> Iterator[asyncio.Queue[InboxUpdate | None]]:
        """A feed's queue; None in it means the feed ends (it fell behind, or
        the gateway is stopping): the page reconnects and reloads the queue."""
        queue: asyncio.Queue[InboxUpdate | None] = asyncio.Queue(self.queue_size + 1)
        self._feeds.add(queue)
        try:
            yield queue
        finally:
            self._feeds.discard(queue)

    def offer(self, session_id: str, frame: ServerFrame) -> None:
        if not concerns_operators(frame):
            return
        for queue in list(self._feeds):
            if queue.qsize() >= self.queue_size:
                self._end(queue)  # fell behind: it reloads rather than miss updates silently
            else:
                queue.put_nowait(InboxUpdate(session_id, frame))

    def close_all(self) -> None:
        for queue in list(self._feeds):
            self._end(queue)

    def _end(self, queue: asyncio.Queue[InboxUpdate | None]) -> None:
        self._feeds.discard(queue)
        queue.put_nowait(None)
