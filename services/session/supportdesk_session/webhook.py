"""Tells the support team's own systems (a pager, a ticketing tool, Slack) that
a session waits for a human: an HTTP POST per escalation, signed so the
receiver can trust it, retried with backoff, its outcome kept on the session
for the operators' inbox.

Signature, as Stripe and GitHub do it: `X-SupportDesk-Signature: sha256=<hex
HMAC-SHA256(ESCALATION_WEBHOOK_SECRET, "<timestamp>.<body>")>` with the
timestamp in `X-SupportDesk-Timestamp` (seconds), so a receiver can refuse
replays. It runs in a consumer group of its own on the escalations topic: a
slow receiver delays no chat."""

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import dataclass

import httpx

from supportdesk_contracts.events import SessionEscalated
from supportdesk_sessions.recorder import SessionRecorder

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-SupportDesk-Signature"
TIMESTAMP_HEADER = "X-SupportDesk-Timestamp"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass(frozen=True)
class WebhookPolicy:
    url: str
    secret: str
    attempts: int = 5
    backoff_seconds: float = 1.0
    timeout_seconds: float = 10.0


class EscalationWebhook:
    def __init__(self, policy: WebhookPolicy, store: SessionRecorder, client: httpx.AsyncClient) -> None:
        self.policy = policy
        self.store = store
        self.client = client

    async def notify(self, event: SessionEscalated) -> str:
        """Delivers one escalation (once per escalation, also when the event
        comes twice) and records the outcome; returns it."""
        if await self.store.webhook_outcome(event.session_id, event.seq) is not None:
            return "already notified"
        body = json.dumps(
            {
                "event": event.event_type,
                "session_id": event.session_id,
                "reason": event.reason,
                "seq": event.seq,
                "occurred_at": event.occurred_at.isoformat(),
            }
        ).encode()
        outcome = await self._deliver(body)
        await self.store.record_webhook_outcome(event.session_id, event.seq, outcome)
        log.info("escalation webhook", extra={"outcome": outcome, "session_id": event.session_id})
        return outcome

    async def _deliver(self, body: bytes) -> str:
        failure, attempt = "", 0
        for attempt in range(1, self.policy.attempts + 1):
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: signature(self.policy.secret, timestamp, body),
            }
            try:
                response = await self.client.post(
                    self.policy.url, content=body, headers=headers, timeout=self.policy.timeout_seconds
                )
            except httpx.HTTPError as exc:
                failure = f"{type(exc).__name__}"
            else:
                if response.is_success:
                    return f"delivered after {attempt} attempt{'s' if attempt > 1 else ''}"
                failure = f"HTTP {response.status_code}"
                if response.is_client_error and response.status_code not in (408, 429):
                    break  # the receiver refuses it: trying again changes nothing
            if attempt < self.policy.attempts:
                # Exponential backoff with jitter, so receivers coming back are not stampeded.
                await asyncio.sleep(self.policy.backoff_seconds * 2 ** (attempt - 1) * random.uniform(0.5, 1.0))
        return f"failed after {attempt} attempt{'s' if attempt > 1 else ''}: {failure}"
