"""Follow-ups rewritten by a real model (llama.cpp with SmolLM2-135M, a weak
one on purpose) against the sample knowledge: its rewrites are used where
they hold up and never make a two-turn conversation worse than reading the
follow-up by its words."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncOpenAI
from prometheus_client import CollectorRegistry

from supportdesk_agent.answerer import RetrievalOptions, TurnAnswerer
from supportdesk_agent.escalation import EscalationPolicy
from supportdesk_agent.generators import ExtractiveGenerator
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_agent.rewriting import LlmRewriter
from supportdesk_contracts.events import HistoryTurn, TurnRequested
from supportdesk_ingest.samples import sample_documents
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_knowledge.index import KnowledgeIndex, open_client
from supportdesk_knowledge.settings import KnowledgeSettings

pytestmark = pytest.mark.integration


class Discard:
    async def publish(self, *args: Any, **kwargs: Any) -> None:
        return None


class Counting(LlmRewriter):
    calls: int = 0

    async def rewrite(self, message: str, history: list[HistoryTurn]) -> str | None:
        self.calls += 1
        return await super().rewrite(message, history)


@pytest.fixture
async def rewriting(embedder: Any, qdrant_path: str, llm_base_url: str) -> AsyncIterator[tuple[TurnAnswerer, Counting]]:
    settings = KnowledgeSettings(qdrant_path=qdrant_path)
    index = KnowledgeIndex(open_client(settings), settings.qdrant_collection, embedder.dimension, server=False)
    await index.ensure_collection()
    kb = KnowledgeBase(settings, embedder, index)
    for title, body in sample_documents():
        await kb.add_document(title.lower().replace(" ", "-"), title, body)
    client = AsyncOpenAI(base_url=llm_base_url, api_key="not-needed")
    rewriter = Counting(client, "smollm2", timeout_seconds=60)
    yield (
        TurnAnswerer(
            retriever=kb,
            generator=ExtractiveGenerator(embedder),
            escalation=EscalationPolicy({}, 0.9),
            retrieval=RetrievalOptions(),
            escalate_on_no_answer=True,
            deltas=Discard(),
            completions=Discard(),
            metrics=AgentMetrics(CollectorRegistry()),
            rewriter=rewriter,
        ),
        rewriter,
    )
    await client.close()
    await kb.close()


CONVERSATIONS = [
    ("How long does express shipping take?", "and what about returns?", "Return process"),
    ("How long does standard shipping take?", "and express?", "Shipping information"),
    ("What is your refund policy?", "how long does it take?", "Refund policy"),
    ("Do you ship to Canada?", "how much does it cost?", "International shipping"),
    ("How do I reset my password?", "What payment methods do you accept?", "Payment methods"),
]


async def test_rewrites_by_a_real_model_never_make_follow_ups_worse(
    rewriting: tuple[TurnAnswerer, Counting],
) -> None:
    answerer, rewriter = rewriting
    for first, then, expected in CONVERSATIONS:
        history = [HistoryTurn(role="user", content=first), HistoryTurn(role="assistant", content="(the answer)")]
        hits = await answerer.retrieve(TurnRequested(session_id="s", message_id="m", content=then, history=history))
        assert hits, f"nothing found for {then!r} after {first!r}"
        assert hits[0].title == expected, f"{then!r} after {first!r}"
    assert rewriter.calls == 4  # the new question was not sent to the model
