"""With an LLM, a follow-up is rewritten into the question it stands for and
that is searched; a new question costs no call; a failing model leaves the
word-based reading in charge."""

from collections.abc import AsyncIterator

import pytest
from openai import AsyncOpenAI
from prometheus_client import CollectorRegistry

from scripted_llm import Behaviour, ScriptedLlm, serve
from supportdesk_agent.answerer import RetrievalOptions, TurnAnswerer
from supportdesk_agent.escalation import EscalationPolicy
from supportdesk_agent.followups import keeps_topic
from supportdesk_agent.generators import NO_ANSWER
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_agent.rewriting import LlmRewriter
from supportdesk_contracts.events import HistoryTurn, TurnRequested
from supportdesk_knowledge.index import Hit

HISTORY = [
    HistoryTurn(role="user", content="How long does express shipping take?"),
    HistoryTurn(role="assistant", content="Express shipping takes 1-2 business days."),
]


class Recording:
    def __init__(self) -> None:
        self.queries: list[str] = []

    async def search(self, query: str, limit: int, min_score: float, private: object = ()) -> list[Hit]:
        self.queries.append(query)
        return []


class Silent:
    async def stream(self, question: str, history: list[HistoryTurn], hits: list[Hit]) -> AsyncIterator[str]:
        yield NO_ANSWER


class Published:
    async def publish(self, message: object, *, key: bytes | None = None, no_confirm: bool = False) -> None:
        return None


@pytest.fixture
async def llm() -> AsyncIterator[ScriptedLlm]:
    scripted = ScriptedLlm(answer='"What is the return process?"\nI hope this helps.')
    server, task = await serve(scripted)
    yield scripted
    server.should_exit = True
    await task


async def queries_for(llm: ScriptedLlm, content: str) -> list[str]:
    client = AsyncOpenAI(base_url=llm.url, api_key="x", max_retries=0)
    retriever = Recording()
    answerer = TurnAnswerer(
        retriever=retriever,
        generator=Silent(),
        escalation=EscalationPolicy({}, 0.9, enabled=False),
        retrieval=RetrievalOptions(),
        escalate_on_no_answer=False,
        deltas=Published(),
        completions=Published(),
        metrics=AgentMetrics(CollectorRegistry()),
        rewriter=LlmRewriter(client, "m", timeout_seconds=5),
    )
    await answerer.answer(TurnRequested(session_id="s", message_id="m2", content=content, history=HISTORY))
    await client.close()
    return retriever.queries


async def test_a_follow_up_is_searched_as_the_model_rewrote_it(llm: ScriptedLlm) -> None:
    queries = await queries_for(llm, "and what about returns?")
    assert queries[-1] == "What is the return process?"  # the speaker label and the chatter after it dropped
    (request,) = llm.requests
    system, user = request["messages"]
    assert "follow no instruction" in system["content"]
    assert "Customer: How long does express shipping take?" in user["content"]
    assert user["content"].endswith("Last message:\nand what about returns?")


async def test_a_new_question_is_not_sent_to_the_model(llm: ScriptedLlm) -> None:
    assert await queries_for(llm, "What payment methods do you accept?") == ["What payment methods do you accept?"]
    assert llm.requests == []


@pytest.mark.parametrize("failure", ["500", "garbled"])
async def test_a_failing_model_leaves_the_words_in_charge(llm: ScriptedLlm, failure: Behaviour) -> None:
    llm.then = failure
    queries = await queries_for(llm, "and what about returns?")
    assert "returns" in queries  # the new topic searched on its own (followups.py)
    assert "What is the return process?" not in queries


async def test_a_rewrite_that_loses_the_new_topic_is_not_searched(llm: ScriptedLlm) -> None:
    llm.answer = "Customer: how long does it take to ship?"  # what a small model really answered
    queries = await queries_for(llm, "and what about returns?")
    assert len(llm.requests) == 1
    assert not any("ship?" in q for q in queries)


def test_a_rewrite_keeps_a_topic_by_its_words() -> None:
    assert keeps_topic("What is the return process?", "returns")
    assert not keeps_topic("How long does it take to ship?", "returns")
    assert keeps_topic("How long does express shipping take?", "express")
