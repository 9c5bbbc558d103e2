"""A WebSocket chat load from outside, as `make bench` drives it: sessions
chatting back to back (closed loop: the most a system answers), or paced at
a fixed total rate (the latency users see at a given load); and idle
sockets held open (`hold`), as many quiet browser tabs would.

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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import WebSocketException

REPLY_TIMEOUT_SECONDS = 30.0
HANDSHAKE_TIMEOUT_SECONDS = 30.0
USER_AGENT = "supportdesk-loadgen"
"""Of every request, REST or WebSocket: a browser's sessions and sockets carry
one User-Agent, and the gateway's fingerprint check (lenient by default)
logs every socket whose client differs from its session's."""


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
    async with websockets.connect(url, max_size=None, compression=None, user_agent_header=USER_AGENT) as ws:
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


@dataclass
class Opened:
    """What it took to open idle sockets (plain data: it crosses from the
    process that holds them)."""

    sockets: int
    seconds: float
    concurrency: int
    extensions: str
    """What the server agreed to (permessage-deflate, or none), as the first socket saw it."""
    failures: Counter[str] = field(default_factory=Counter)
    """Sockets that did not open, by reason."""

    @property
    def rate(self) -> float:
        """Sockets opened (and answered) per second."""
        return self.sockets / self.seconds if self.seconds else 0.0


async def _open_idle(url: str, gate: asyncio.Semaphore) -> ClientConnection:
    async with gate:
        # Like a browser: compression offered (the server may decline it),
        # no pings of its own (it answers the server's).
        ws = await websockets.connect(
            url, ping_interval=None, open_timeout=HANDSHAKE_TIMEOUT_SECONDS, user_agent_header=USER_AGENT
        )
        try:
            # The gateway closes a socket it refuses (4001, 4003, 4004, 1013)
            # after accepting it: a pong says this one is authorized and served.
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_SECONDS):
                await ws.send(json.dumps({"type": "ping"}))
                frame = json.loads(await ws.recv())
            if frame.get("type") != "pong":
                raise WebSocketException(f"expected a pong, got {frame}")
        except BaseException:
            await ws.close()
            raise
        return ws


async def hold(urls: list[str], concurrency: int) -> tuple[list[ClientConnection], Opened]:
    """One idle socket per url, at most `concurrency` handshakes in flight;
    they stay open until `release`. A socket that fails to open (refused,
    timed out) is counted, not retried."""
    gate = asyncio.Semaphore(concurrency)
    began = time.perf_counter()
    results = await asyncio.gather(*(_open_idle(url, gate) for url in urls), return_exceptions=True)
    seconds = time.perf_counter() - began
    sockets = [r for r in results if isinstance(r, ClientConnection)]
    response = sockets[0].response if sockets else None
    extensions = (response.headers.get("Sec-WebSocket-Extensions") if response else None) or "none"
    opened = Opened(len(sockets), seconds, concurrency, extensions)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, OSError | TimeoutError | WebSocketException):
            await release(sockets, concurrency)
            raise result
        if isinstance(result, BaseException):
            opened.failures[f"{type(result).__name__}: {result}"[:80]] += 1
    return sockets, opened


async def release(sockets: list[ClientConnection], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def close_one(ws: ClientConnection) -> None:
        async with gate:
            await ws.close()

    await asyncio.gather(*(close_one(ws) for ws in sockets))


def hold_until_told(urls: list[str], concurrency: int, pipe: Connection) -> None:
    """A process's target: holds the sockets and sends their `Opened`; on
    any message closes them and sends None. Holding them apart from the
    client that times active chats keeps their client-side work (answering
    the server's pings, collecting their garbage) out of its timings, as
    idle browsers elsewhere would."""

    async def held() -> None:
        sockets, opened = await hold(urls, concurrency)
        pipe.send(opened)
        await asyncio.to_thread(pipe.recv)
        await release(sockets, concurrency)
        pipe.send(None)

    asyncio.run(held())
