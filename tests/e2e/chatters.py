"""Users chatting over WebSockets while something breaks, and what they saw.

Each `Chatter` is one user as the web page behaves: one session, messages one
after another, each with its own id; on a dropped connection it reconnects
(to the next gateway) and sends `resume`, and sends again, with the same id,
every message not acknowledged yet. What it received is counted per message:
answered, lost, answered twice (two replies with different seqs), delivered
twice (the same reply frame again, which a client drops by its seq)."""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

QUESTION = "How long does standard shipping take?"
SESSION_GONE = 4004
ANSWER_WORDS = "3-5 business days"


@dataclass
class Sent:
    message_id: str
    at: float
    session_id: str
    acked: bool = False
    replies: list[dict[str, Any]] = field(default_factory=list)
    """Every reply frame received for it, repeats included."""

    @property
    def answered_at(self) -> float | None:
        return self.replies[0]["_at"] if self.replies else None


@dataclass
class Chatter:
    gateways: Sequence[str]
    """Base URLs (http://host:port) of the gateways, tried in turn."""
    pause: float = 0.1
    reply_timeout: float = 120.0
    sent: list[Sent] = field(default_factory=list)
    replica: int = 0
    """The gateway it connects to first; the next one after a drop."""
    reconnects: int = 0
    sessions_lost: int = 0
    _last_seq: int = 0
    _by_id: dict[str, Sent] = field(default_factory=dict)
    _resend_at: float | None = None

    async def open_session(self, within: float = 120.0) -> None:
        """A new session, asked again (as a user would) while the system is
        not there (a 503 while Redis restarts, a gateway going away)."""
        deadline = time.monotonic() + within
        while True:
            try:
                async with httpx.AsyncClient(base_url=self.gateways[self.replica % len(self.gateways)]) as http:
                    response = await http.post("/api/v1/sessions", json={}, timeout=30)
                if response.status_code == httpx.codes.CREATED:
                    created = response.json()
                    self.session_id, self.token = created["session_id"], created["token"]
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("no session could be opened")
            self.replica += 1
            await asyncio.sleep(0.5)

    def _url(self) -> str:
        base = self.gateways[self.replica % len(self.gateways)].replace("http://", "ws://")
        return f"{base}/ws?session_id={self.session_id}&token={self.token}"

    async def run(self, stop: asyncio.Event) -> None:
        """Chats until `stop`, then waits for the replies still owed (at most
        `reply_timeout` after the oldest was sent)."""
        await self.open_session()
        while not self._given_up():
            try:
                async with websockets.connect(self._url(), open_timeout=10, max_size=None) as ws:
                    await ws.send(json.dumps({"type": "resume", "after_seq": self._last_seq}))
                    for unacked in [s for s in self.sent if not s.acked and s.session_id == self.session_id]:
                        await self._send(ws, unacked.message_id)
                    if await self._chat(ws, stop):
                        return
            except websockets.exceptions.ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code == SESSION_GONE:
                    # The session is gone (its state was lost): a new one, as
                    # the page does; what the old one owed is lost with it.
                    self.sessions_lost += 1
                    self._last_seq = 0
                    await self.open_session()
            except (OSError, websockets.exceptions.WebSocketException, TimeoutError):
                pass
            # Dropped, or the gateway went away: the next one, after a moment.
            self.reconnects += 1
            self.replica += 1
            await asyncio.sleep(0.5)

    def _given_up(self) -> bool:
        owed = [s for s in self.sent if not s.replies and s.session_id == self.session_id]
        return bool(owed) and time.monotonic() - owed[0].at > self.reply_timeout

    async def _send(self, ws: ClientConnection, message_id: str) -> None:
        await ws.send(json.dumps({"type": "message", "content": QUESTION, "message_id": message_id}))

    async def _chat(self, ws: ClientConnection, stop: asyncio.Event) -> bool:
        """True when done: stopped and nothing owed."""
        receiving = asyncio.create_task(self._receive(ws))
        try:
            while True:
                owed = [s for s in self.sent if not s.replies and s.session_id == self.session_id]
                if stop.is_set() and not owed:
                    return True
                if not owed and not stop.is_set():
                    sent = Sent(str(uuid.uuid4()), time.monotonic(), self.session_id)
                    self.sent.append(sent)
                    self._by_id[sent.message_id] = sent
                    await self._send(ws, sent.message_id)
                if self._resend_at is not None and time.monotonic() >= self._resend_at:
                    self._resend_at = None  # after an outage behind the gateway, as the page does
                    for unacked in [s for s in self.sent if not s.acked and s.session_id == self.session_id]:
                        await self._send(ws, unacked.message_id)
                if receiving.done():
                    receiving.result()  # the connection's error, if it failed
                    return False
                if owed and time.monotonic() - owed[0].at > self.reply_timeout:
                    return True  # given up: counted as lost
                await asyncio.sleep(self.pause)
        finally:
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.exceptions.WebSocketException):
                await receiving

    async def _receive(self, ws: ClientConnection) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if isinstance(frame.get("seq"), int):
                self._last_seq = max(self._last_seq, frame["seq"])
            if frame["type"] == "ack" and (sent := self._by_id.get(frame["message_id"])):
                sent.acked = True
            elif frame["type"] == "reply" and (sent := self._by_id.get(frame["reply_to"])):
                sent.replies.append({**frame, "_at": time.monotonic()})
            elif frame["type"] == "error" and frame["code"] == "unavailable":
                self._resend_at = time.monotonic() + 1.0


@dataclass(frozen=True)
class Tally:
    """What the users saw during one fault."""

    sent: int
    answered: int
    lost: int
    answered_twice: int
    delivered_twice: int
    wrong: int
    """Answers without the expected fact (a fallback may still carry it)."""
    recovery_seconds: float | None
    """From the fault to the first answer to a message sent after it."""
    reconnects: int
    sessions_lost: int


def tally(chatters: Sequence[Chatter], fault_at: float) -> Tally:
    sent = [s for c in chatters for s in c.sent]
    answered = [s for s in sent if s.replies]
    after = [s.answered_at for s in sent if s.at >= fault_at and s.answered_at is not None]
    return Tally(
        sent=len(sent),
        answered=len(answered),
        lost=len(sent) - len(answered),
        answered_twice=sum(1 for s in sent if len({r["seq"] for r in s.replies}) > 1),
        delivered_twice=sum(1 for s in sent if len(s.replies) > len({r["seq"] for r in s.replies})),
        wrong=sum(1 for s in answered if ANSWER_WORDS not in s.replies[0]["content"]),
        recovery_seconds=round(min(after) - fault_at, 1) if after else None,
        reconnects=sum(c.reconnects for c in chatters),
        sessions_lost=sum(c.sessions_lost for c in chatters),
    )
