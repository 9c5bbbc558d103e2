"""An answer superseded by a newer message (AGENT_DOUBLE_TEXT=interrupt):
cut short at once, even while the model is between tokens, and completed as
interrupted with what was streamed; one superseded before it began is not
generated at all."""

import asyncio
from collections.abc import AsyncGenerator

from prometheus_client import CollectorRegistry

from supportdesk_agent.answerer import RetrievalOptions, TurnAnswerer
from supportdesk_agent.escalation import EscalationPolicy
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_contracts.events import HistoryTurn, ReplyCompleted, TurnRequested
from supportdesk_knowledge.index import Hit

SHIPPING = Hit("d-ship", "Shipping", "Standard shipping takes 3-5 business days.", 0.8)


class Stalling:
    """Says a few words, then stalls as a model can between tokens."""

    def __init__(self) -> None:
        self.calls = 0
        self.closed = asyncio.Event()

    async def stream(self, question: str, history: list[HistoryTurn], hits: list[Hit]) -> AsyncGenerator[str]:
        self.calls += 1
        try:
            yield "Standard "
            yield "shipping "
            await asyncio.sleep(3600)
            yield "never"
        finally:
            self.closed.set()


class Published:
    def __init__(self) -> None:
        self.events: list[object] = []

    async def publish(self, message: object, *, key: bytes | None = None, no_confirm: bool = False) -> None:
        self.events.append(message)


class Shipping:
    async def search(self, query: str, limit: int, min_score: float, private: object = ()) -> list[Hit]:
        return [SHIPPING]


def answerer(generator: Stalling, completions: Published, keywords: dict[str, float] | None = None) -> TurnAnswerer:
    return TurnAnswerer(
        retriever=Shipping(),
        generator=generator,
        escalation=EscalationPolicy(keywords or {}, 0.9),
        retrieval=RetrievalOptions(),
        escalate_on_no_answer=True,
        deltas=Published(),
        completions=completions,
        metrics=AgentMetrics(CollectorRegistry()),
    )


def turn(content: str = "How long does shipping take?") -> TurnRequested:
    return TurnRequested(session_id="s1", message_id="m1", content=content)


async def test_a_stalled_answer_is_cut_short_at_once_and_marked_interrupted() -> None:
    model, completions = Stalling(), Published()
    superseded = asyncio.Event()
    answering = asyncio.create_task(answerer(model, completions).answer(turn(), superseded))
    await asyncio.sleep(0.05)
    superseded.set()
    await asyncio.wait_for(answering, 2)
    (completed,) = completions.events
    assert isinstance(completed, ReplyCompleted)
    assert completed.reply.interrupted
    assert completed.reply.content == "Standard shipping"
    assert not completed.reply.escalated
    assert model.closed.is_set()  # the model's stream was closed, not left hanging


async def test_a_turn_superseded_before_it_began_calls_no_model() -> None:
    model, completions = Stalling(), Published()
    superseded = asyncio.Event()
    superseded.set()
    await answerer(model, completions).answer(turn(), superseded)
    (completed,) = completions.events
    assert isinstance(completed, ReplyCompleted)
    assert completed.reply.interrupted
    assert completed.reply.content == ""
    assert completed.reply.sources == []
    assert model.calls == 0


async def test_an_interrupted_message_still_escalates_for_what_it_said() -> None:
    model, completions = Stalling(), Published()
    superseded = asyncio.Event()
    superseded.set()
    await answerer(model, completions, {"lawyer": 1.0}).answer(turn("My lawyer will call you"), superseded)
    (completed,) = completions.events
    assert isinstance(completed, ReplyCompleted)
    assert completed.reply.escalated
    assert completed.escalation_reason is not None
