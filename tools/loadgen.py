"""A WebSocket chat load from outside, as `make bench` drives it: sessions
chatting back to back (closed loop: the most a system answers), or paced at
a fixed total rate (the latency users see at a given load).

Every turn is timed from sending the message to its `reply` frame (and to
its first `delta`, when there is one); a turn with no reply by the end is
counted lost. Loopback only, bounded in time.
"""

import asyncio
import json
import random
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import websockets
from websockets.asyncio.client import ClientConnection

REPLY_TIMEOUT_SECONDS = 30.0


@dataclass
class Load:
    seconds: float = 0.0
    replies: list[float] = field(default_factory=list)
    first_deltas: list[float] = field(default_factory=list)
    sent: int = 0
    errors: int = 0
    handoffs: int = 0

    @property
    def lost(self) -> int:
        return self.sent - len(self.replies) - self.errors - self.handoffs

    @property
    def rate(self) -> float:
        return len(self.replies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float, values: list[float] | None = None) -> float:
        """The q-quantile in milliseconds (nan without values)."""
        ordered = sorted(self.replies if values is None else values)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def median(self) -> float:
        return statistics.median(self.replies) * 1000 if self.replies else float("nan")

    def merge(self, other: "Load") -> None:
        self.replies += other.replies
        self.first_deltas += other.first_deltas
        self.sent += other.sent
        self.errors += other.errors
        self.handoffs += other.handoffs


Message = Callable[[int], str]
"""The text of turn number n (vary it, or every question is a cache hit)."""


async def _turn(ws: ClientConnection, text: str, load: Load) -> None:
    message_id = str(uuid.uuid4())
    began = time.perf_counter()
    load.sent += 1
    await ws.send(json.dumps({"type": "message", "content": text, "message_id": message_id}))
    first = True
    async with asyncio.timeout(REPLY_TIMEOUT_SECONDS):
        while True:
            frame = json.loads(await ws.recv())
            kind, about = frame.get("type"), frame.get("reply_to", frame.get("message_id"))
            if about != message_id:
                continue
            if kind == "delta" and first:
                first = False
                load.first_deltas.append(time.perf_counter() - began)
            elif kind == "reply":
                load.replies.append(time.perf_counter() - began)
                return
            elif kind == "error":
                load.errors += 1
                return
            elif kind == "ack" and frame.get("handoff"):
                load.handoffs += 1  # a human answers, later: the bot stays quiet (a question that escalated)
                return


async def _session(url: str, message: Message, until: float, interval: float | None, load: Load) -> None:
    n = 0
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        if interval is not None:
            await asyncio.sleep(random.uniform(0, interval))  # spread the sessions' phases
        while time.perf_counter() < until:
            began = time.perf_counter()
            try:
                await _turn(ws, message(n), load)
            except TimeoutError:
                return  # counted lost
            n += 1
            if interval is not None:
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - began)))


async def run(urls: list[str], message: Message, seconds: float, rate: float | None = None) -> Load:
    """One session per url, for `seconds`: back to back, or each at its
    share of a total `rate` (turns per second)."""
    interval = len(urls) / rate if rate else None
    load = Load()
    began = time.perf_counter()
    until = began + seconds
    await asyncio.gather(*(_session(url, message, until, interval, load) for url in urls))
    load.seconds = time.perf_counter() - began
    return load
