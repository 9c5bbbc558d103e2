"""The support team's end of the escalation webhook, on loopback: it refuses
the first two deliveries of each escalation (503) and takes the third, and
keeps every request so a test can check signatures and attempts."""

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devstack import free_port

SECRET = "e2e-webhook-secret-0f6c1d9a7b3e4c2d8a5f"
REFUSALS = 2


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, session_id: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.event.get("session_id") == session_id]


def start(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            session_id = json.loads(body).get("session_id")
            with receiver.lock:
                earlier = sum(1 for d in receiver.deliveries if d.event.get("session_id") == session_id)
                status = 503 if earlier < REFUSALS else 200
                receiver.deliveries.append(Delivery(dict(self.headers.items()), body, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.url = f"http://127.0.0.1:{port}/escalations"
    return server
