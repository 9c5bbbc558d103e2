"""A turn delivered again after its answer was finished (the agent restarted
before committing it, or the user sent the same message id again before the
reply was recorded) is completed from the kept answer: the LLM is called
once, the two completions carry the same reply. With the real Redis and a
scripted OpenAI-compatible server that counts its calls."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncOpenAI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from builders import session_store
from scripted_llm import ScriptedLlm, serve
from supportdesk_agent.answerer import RetrievalOptions, TurnAnswerer
from supportdesk_agent.escalation import EscalationPolicy
from supportdesk_agent.generators import ExtractiveGenerator, LlmGenerator
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_contracts.events import Reply, ReplyCompleted, TurnRequested
from supportdesk_knowledge.index import Hit
from supportdesk_sessions.answers import KEPT, FinishedAnswers
from supportdesk_sessions.cipher import SessionCipher
from supportdesk_sessions.settings import DEVELOPMENT_ENCRYPTION_KEY

pytestmark = pytest.mark.integration

SHIPPING = Hit("d-ship", "Shipping information", "Standard shipping takes 3-5 business days.", 0.71)


class Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def publish(self, message: Any, *, key: bytes | None = None, no_confirm: bool = False) -> None:
        self.events.append(message)


class Found:
    async def search(self, query: str, limit: int, min_score: float, private: object = ()) -> list[Hit]:
        return [SHIPPING]


@pytest.fixture
async def llm() -> AsyncIterator[ScriptedLlm]:
    scripted = ScriptedLlm(answer="Standard shipping takes 3-5 business days [1].")
    server, task = await serve(scripted)
    yield scripted
    server.should_exit = True
    await task


async def test_a_turn_delivered_again_does_not_call_the_llm_again(
    llm: ScriptedLlm, embedder: Any, redis: Redis, unique: str
) -> None:
    session, _ = await session_store(redis, unique).create(None)
    client = AsyncOpenAI(base_url=llm.url, api_key="x", max_retries=0)
    completions = Recorder()
    metrics = AgentMetrics(CollectorRegistry())
    answerer = TurnAnswerer(
        retriever=Found(),
        generator=LlmGenerator(
            client, "m", ExtractiveGenerator(embedder), timeout_seconds=30, max_tokens=64, temperature=0
        ),
        escalation=EscalationPolicy({}, 0.9),
        retrieval=RetrievalOptions(),
        escalate_on_no_answer=True,
        deltas=Recorder(),
        completions=completions,
        metrics=metrics,
        answers=FinishedAnswers(redis, SessionCipher([DEVELOPMENT_ENCRYPTION_KEY]), unique),
    )
    turn = TurnRequested(session_id=session.session_id, message_id="m1", content="How long does shipping take?")
    await answerer.answer(turn)
    await answerer.answer(turn)  # redelivered after a restart
    await answerer.answer(turn.model_copy(update={"event_id": uuid.uuid4()}))  # the same message id sent again
    await client.close()

    assert len(llm.requests) == 1
    first, *again = completions.events
    assert all(isinstance(c, ReplyCompleted) for c in completions.events)
    assert [c.reply for c in again] == [first.reply, first.reply]
    assert "3-5 business days" in first.reply.content
    assert metrics.answers.labels("reused")._value.get() == 2


async def test_kept_answers_are_bounded_and_gone_with_their_session(redis: Redis, unique: str) -> None:
    store = session_store(redis, unique)
    session, _ = await store.create(None)
    answers = FinishedAnswers(redis, SessionCipher([DEVELOPMENT_ENCRYPTION_KEY]), unique)
    reply = Reply(id="r", content="kept", confidence=0.5)
    for i in range(KEPT + 5):
        await answers.keep(session.session_id, f"m{i}", reply, None)
    assert await redis.hlen(store.keys(session.session_id).answers) <= KEPT  # type: ignore[misc]
    assert await answers.get(session.session_id, f"m{KEPT + 4}") == (reply, None)
    await store.delete(session.session_id)
    assert await answers.get(session.session_id, f"m{KEPT + 4}") is None
    await answers.keep(session.session_id, "late", reply, None)  # never brings a purged session back
    assert not await redis.exists(store.keys(session.session_id).answers)
