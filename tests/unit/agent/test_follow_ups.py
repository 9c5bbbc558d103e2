"""Two-turn conversations, as a new user has them, against the sample
knowledge with the real embedding model: a follow-up is read with the
question before it, and a new topic is answered as a new topic."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from supportdesk_agent.answerer import RetrievalOptions, TurnAnswerer
from supportdesk_agent.escalation import EscalationPolicy
from supportdesk_agent.followups import Shape, classify
from supportdesk_agent.generators import ExtractiveGenerator
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_agent.settings import DEFAULT_ESCALATION_KEYWORDS
from supportdesk_contracts.events import HistoryTurn, TurnRequested
from supportdesk_ingest.samples import sample_documents
from supportdesk_knowledge.base import KnowledgeBase
from supportdesk_knowledge.index import KnowledgeIndex, open_client
from supportdesk_knowledge.settings import KnowledgeSettings


class Discard:
    async def publish(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture
async def answerer(embedder: Any, qdrant_path: str) -> AsyncIterator[TurnAnswerer]:
    settings = KnowledgeSettings(qdrant_path=qdrant_path)
    index = KnowledgeIndex(open_client(settings), settings.qdrant_collection, embedder.dimension, server=False)
    await index.ensure_collection()
    kb = KnowledgeBase(settings, embedder, index)
    for title, body in sample_documents():
        await kb.add_document(title.lower().replace(" ", "-"), title, body)
    yield TurnAnswerer(
        retriever=kb,
        generator=ExtractiveGenerator(embedder),
        escalation=EscalationPolicy(DEFAULT_ESCALATION_KEYWORDS, 0.9),
        retrieval=RetrievalOptions(),
        escalate_on_no_answer=True,
        deltas=Discard(),
        completions=Discard(),
        metrics=AgentMetrics(CollectorRegistry()),
    )
    await kb.close()


@pytest.mark.parametrize(
    ("first", "then", "expected"),
    [
        # A new topic in the old question's frame (the case a user reported).
        ("How long does express shipping take?", "and what about returns?", "Return process"),
        ("How long does standard shipping take?", "and express?", "Shipping information"),
        # A reference back to the previous question's topic.
        ("What is your refund policy?", "how long does it take?", "Refund policy"),
        ("Do you ship to Canada?", "how much does it cost?", "International shipping"),
        # A new question stays a new question.
        ("How do I reset my password?", "What payment methods do you accept?", "Payment methods"),
        ("How long does standard shipping take?", "Is my personal data shared with anyone?", "Data privacy"),
    ],
)
async def test_the_second_question_is_answered_from_what_it_means(
    answerer: TurnAnswerer, first: str, then: str, expected: str
) -> None:
    history = [HistoryTurn(role="user", content=first), HistoryTurn(role="assistant", content="(the answer)")]
    hits = await answerer.retrieve(TurnRequested(session_id="s", message_id="m", content=then, history=history))
    assert hits, f"nothing found for {then!r} after {first!r}"
    assert hits[0].title == expected


async def test_a_follow_up_about_something_unknown_finds_nothing(answerer: TurnAnswerer) -> None:
    history = [HistoryTurn(role="user", content="How long does express shipping take?")]
    turn = TurnRequested(session_id="s", message_id="m", content="and what about volcanoes?", history=history)
    assert await answerer.retrieve(turn) == []


def test_the_shape_of_a_follow_up() -> None:
    assert classify("and what about returns?") == classify("What about returns")
    assert classify("and what about returns?").shape is Shape.NEW_TOPIC
    assert classify("and what about returns?").topic == "returns"
    assert classify("how long does it take?").shape is Shape.REFERENCE
    assert classify("What payment methods do you accept?").shape is Shape.NEW_QUESTION
