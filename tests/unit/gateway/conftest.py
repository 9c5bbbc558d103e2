"""The gateway in-process on FastStream's in-memory broker, with the real
session worker's handlers on the same broker and a small agent that answers
every turn by echoing it."""

from collections.abc import AsyncIterator

import httpx
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from redis.asyncio import Redis

from builders import IDENTITY_SECRET, OPERATOR_KEY, InProcess
from supportdesk_contracts.events import Reply, ReplyCompleted, TurnRequested
from supportdesk_gateway.app import build_gateway
from supportdesk_gateway.settings import GatewaySettings
from supportdesk_platform.kafka import NoProvisioning, key_of
from supportdesk_session.app import session_component
from supportdesk_session.settings import SessionWorkerSettings


@pytest.fixture
def gateway_overrides() -> dict[str, object]:
    """Settings of the in-process gateway; a test parametrizes this name to change them."""
    return {}


@pytest.fixture
async def system(redis: Redis, unique: str, gateway_overrides: dict[str, object]) -> AsyncIterator[InProcess]:
    common = {"kafka_topic_prefix": unique, "redis_key_prefix": unique}
    broker = KafkaBroker()
    settings = GatewaySettings(
        **common,
        identity_secret=IDENTITY_SECRET,
        operator_keys=f"alex={OPERATOR_KEY}",
        **gateway_overrides,  # type: ignore[arg-type]
    )
    gateway = build_gateway(settings, redis=redis, broker=broker, provisioner=NoProvisioning())
    broker.include_router(session_component(SessionWorkerSettings(**common), redis).router)  # type: ignore[arg-type]
    topics = gateway.context.settings.topics
    turns: list[TurnRequested] = []

    @broker.subscriber(topics.agent_turns)
    async def echo(turn: TurnRequested) -> None:
        turns.append(turn)
        # Asked for a human, it escalates, as the real agent does.
        human = "human" in turn.content.lower()
        reply = Reply(id=f"r-{turn.message_id}", content=f"echo: {turn.content}", confidence=1.0, escalated=human)
        completed = ReplyCompleted(
            **turn.caused(),
            reply_to=turn.message_id,
            reply=reply,
            escalation_reason="asked for a human" if human else None,
        )
        await broker.publish(completed, topics.chat_inbound, key=key_of(turn.session_id))

    async with TestKafkaBroker(broker):
        await gateway.service.start()
        transport = httpx.ASGITransport(app=gateway.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield InProcess(gateway, http, turns)
        await gateway.service.stop()
