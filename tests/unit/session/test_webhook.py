"""The escalation webhook against a real HTTP receiver on loopback: signed,
retried with backoff while the receiver fails, given up on a refusal, sent
once per escalation, its outcome kept for the operators' inbox."""

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
import uvicorn
from faststream.kafka import KafkaBroker, KafkaRouter, TestKafkaBroker
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from builders import BothOwners, session_store
from devstack import free_port
from supportdesk_contracts.events import SessionEscalated
from supportdesk_session.handlers import subscribe_webhook
from supportdesk_session.settings import SessionWorkerSettings
from supportdesk_session.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, EscalationWebhook, WebhookPolicy

SECRET = "test-webhook-secret-of-some-length"


@dataclass
class Receiver:
    """Answers the statuses queued in `answers` (then 200) and keeps what it got."""

    url: str
    answers: list[int] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    valid_signatures: list[bool] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    got = Receiver(f"http://127.0.0.1:{port}/hook")

    async def hook(request: Request) -> Response:
        body = await request.body()
        timestamp = request.headers[TIMESTAMP_HEADER]
        expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        got.bodies.append(body)
        got.valid_signatures.append(hmac.compare_digest(request.headers[SIGNATURE_HEADER], f"sha256={expected}"))
        return Response(status_code=got.answers.pop(0) if got.answers else 200)

    server = uvicorn.Server(
        uvicorn.Config(Starlette(routes=[Route("/hook", hook, methods=["POST"])]), port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield got
    server.should_exit = True
    await task


async def escalated_session(store: BothOwners) -> SessionEscalated:
    record, _ = await store.create(None)
    escalation = await store.record_escalation(record.session_id, "asked for a human", None)
    assert escalation is not None
    return SessionEscalated(session_id=record.session_id, reason="asked for a human", seq=escalation.seq)


def webhook(receiver: Receiver, store: BothOwners, client: httpx.AsyncClient, attempts: int = 5) -> EscalationWebhook:
    return EscalationWebhook(WebhookPolicy(receiver.url, SECRET, attempts, backoff_seconds=0.01), store, client)


async def test_a_failing_receiver_is_retried_until_it_takes_it_once(
    receiver: Receiver, redis: Redis, unique: str
) -> None:
    store = session_store(redis, unique)
    event = await escalated_session(store)
    receiver.answers = [500, 503]
    async with httpx.AsyncClient() as client:
        hook = webhook(receiver, store, client)
        assert await hook.notify(event) == "delivered after 3 attempts"
        assert await hook.notify(event) == "already notified"  # the event delivered again
    assert len(receiver.bodies) == 3
    assert all(receiver.valid_signatures)
    assert (await store.get(event.session_id)).webhook == "delivered after 3 attempts"  # type: ignore[union-attr]


async def test_a_refusal_is_not_retried_and_the_failure_is_kept(receiver: Receiver, redis: Redis, unique: str) -> None:
    store = session_store(redis, unique)
    event = await escalated_session(store)
    receiver.answers = [400]
    async with httpx.AsyncClient() as client:
        assert await webhook(receiver, store, client).notify(event) == "failed after 1 attempt: HTTP 400"
    assert len(receiver.bodies) == 1


async def test_a_receiver_that_is_down_ends_as_failed_after_every_attempt(redis: Redis, unique: str) -> None:
    store = session_store(redis, unique)
    event = await escalated_session(store)
    down = Receiver(f"http://127.0.0.1:{free_port()}/hook")
    async with httpx.AsyncClient() as client:
        outcome = await webhook(down, store, client, attempts=3).notify(event)
    assert outcome == "failed after 3 attempts: ConnectError"


async def test_escalations_on_the_topic_reach_the_receiver(receiver: Receiver, redis: Redis, unique: str) -> None:
    settings = SessionWorkerSettings(kafka_topic_prefix=unique, redis_key_prefix=unique)
    store = session_store(redis, unique)
    event = await escalated_session(store)
    router = KafkaRouter()
    async with httpx.AsyncClient() as client:
        subscribe_webhook(router, settings, webhook(receiver, store, client))
        broker = KafkaBroker()
        broker.include_router(router)
        async with TestKafkaBroker(broker):
            await broker.publish(event, settings.topics.escalations)
    assert len(receiver.bodies) == 1
    assert event.session_id.encode() in receiver.bodies[0]
