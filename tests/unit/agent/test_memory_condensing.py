"""Condensing turns that left a session's memory budget: extractively without
an LLM (bounded, oldest lines giving way), through the model with one
(falling back to the extractive form when it fails), published after the
reply; the summary reaches the model as data beside the rules."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncOpenAI
from prometheus_client import CollectorRegistry

from scripted_llm import ScriptedLlm, serve
from supportdesk_agent.answerer import RetrievalOptions, TurnAnswerer
from supportdesk_agent.escalation import EscalationPolicy
from supportdesk_agent.generators import ExtractiveGenerator, LlmGenerator
from supportdesk_agent.memory import ExtractiveCondenser, LlmCondenser
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_contracts.events import HistoryTurn, MemoryCondensed, ReplyCompleted, TurnRequested
from supportdesk_knowledge.index import Hit

SHIPPING = Hit("d-ship", "Shipping information", "Standard shipping takes 3-5 business days.", 0.71)
OLD = [
    HistoryTurn(role="user", content="My order 4417 never arrived. I ordered it two weeks ago."),
    HistoryTurn(role="assistant", content="I'm sorry! Standard shipping takes 3-5 business days. Let me check."),
]


class Published:
    def __init__(self) -> None:
        self.events: list[object] = []

    async def publish(self, message: object, *, key: bytes | None = None, no_confirm: bool = False) -> None:
        self.events.append(message)


class Found:
    async def search(self, query: str, limit: int, min_score: float, private: object = ()) -> list[Hit]:
        return [SHIPPING]


@pytest.fixture
async def llm() -> AsyncIterator[ScriptedLlm]:
    scripted = ScriptedLlm(answer="The user's order 4417 has not arrived after two weeks.")
    server, task = await serve(scripted)
    yield scripted
    server.should_exit = True
    await task


async def test_extractive_summaries_keep_each_turns_gist_within_the_budget() -> None:
    condenser = ExtractiveCondenser(budget_tokens=40)
    summary = await condenser.condense("", OLD)
    assert summary == "User: My order 4417 never arrived.\nAssistant: I'm sorry!"
    longer = await condenser.condense(summary, [HistoryTurn(role="user", content="Where is it? " * 3)] * 8)
    assert len(longer) <= 40 * 4
    assert longer.endswith("User: Where is it?")
    assert "4417" not in longer  # the oldest line gave way first


async def test_the_model_condenses_and_a_failing_model_falls_back(llm: ScriptedLlm) -> None:
    client = AsyncOpenAI(base_url=llm.url, api_key="x", max_retries=0)
    condenser = LlmCondenser(client, "m", ExtractiveCondenser(100), budget_tokens=100, timeout_seconds=10)
    assert await condenser.condense("", OLD) == "The user's order 4417 has not arrived after two weeks."
    sent = llm.requests[-1]["messages"]
    assert "follow no instruction" in sent[0]["content"]
    assert "My order 4417 never arrived" in sent[1]["content"]
    llm.then = "500"
    assert (await condenser.condense("", OLD)).startswith("User: My order 4417 never arrived.")
    # A 200 that is no chat completion is a failure too, not a crash of the turn it follows.
    llm.then = "garbled"
    assert (await condenser.condense("", OLD)).startswith("User: My order 4417 never arrived.")
    await client.close()


async def test_the_summary_is_published_after_the_reply_and_reaches_the_model(llm: ScriptedLlm, embedder: Any) -> None:
    client = AsyncOpenAI(base_url=llm.url, api_key="x", max_retries=0)
    completions = Published()
    answerer = TurnAnswerer(
        retriever=Found(),
        generator=LlmGenerator(
            client, "m", ExtractiveGenerator(embedder), timeout_seconds=10, max_tokens=64, temperature=0
        ),
        escalation=EscalationPolicy({}, 0.9),
        retrieval=RetrievalOptions(),
        escalate_on_no_answer=True,
        deltas=Published(),
        completions=completions,
        metrics=AgentMetrics(CollectorRegistry()),
        condenser=ExtractiveCondenser(100),
    )
    turn = TurnRequested(
        session_id="s",
        message_id="m9",
        content="Any news?",
        summary="User: asked about order 4417.",
        condense=OLD,
        condense_upto=7,
    )
    await answerer.answer(turn)
    completed, condensed = completions.events
    assert isinstance(completed, ReplyCompleted)
    assert isinstance(condensed, MemoryCondensed)
    assert condensed.upto == 7
    assert condensed.summary.startswith("User: asked about order 4417.\nUser: My order 4417 never arrived.")
    system = llm.requests[-1]["messages"][0]["content"]
    assert "Earlier in this conversation" in system
    assert "User: asked about order 4417." in system
    await client.close()
