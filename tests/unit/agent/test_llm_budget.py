"""One session cannot run up the LLM bill: past its token budget (counted in
Redis, shared by every agent replica) it is answered from the passages."""

from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from supportdesk_agent.answerer import RetrievalOptions, TurnAnswerer
from supportdesk_agent.budget import LlmBudget
from supportdesk_agent.escalation import EscalationPolicy
from supportdesk_agent.metrics import AgentMetrics
from supportdesk_contracts.events import HistoryTurn, ReplyCompleted, TurnRequested
from supportdesk_knowledge.index import Hit

SHIPPING = Hit("d-ship", "Shipping", "Standard shipping takes 3-5 business days. " * 4, 0.8)


class Said:
    """A generator that says one fixed thing (which one answered is the point)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls = 0

    async def stream(self, question: str, history: list[HistoryTurn], hits: list[Hit]) -> AsyncIterator[str]:
        self.calls += 1
        yield self.text


class Published:
    def __init__(self) -> None:
        self.events: list[object] = []

    async def publish(self, message: object, *, key: bytes | None = None, no_confirm: bool = False) -> None:
        self.events.append(message)


class Shipping:
    async def search(self, query: str, limit: int, min_score: float, private: object = ()) -> list[Hit]:
        return [SHIPPING]


async def test_a_session_past_its_budget_is_answered_from_the_passages(redis: Redis, unique: str) -> None:
    llm, passages = Said("From the LLM."), Said("From the passages.")
    completions = Published()
    registry = CollectorRegistry()
    answerer = TurnAnswerer(
        retriever=Shipping(),
        generator=llm,
        escalation=EscalationPolicy({}, 0.9),
        retrieval=RetrievalOptions(search_k=4, min_score=0.35, relative_margin=0.15),
        escalate_on_no_answer=True,
        deltas=Published(),
        completions=completions,
        metrics=AgentMetrics(registry),
        budget=LlmBudget(redis, unique, tokens=100, period_seconds=3600),
        within_budget=passages,
    )

    def ask(session_id: str, n: int) -> TurnRequested:
        return TurnRequested(session_id=session_id, message_id=f"m{n}", content="How long is shipping?", history=[])

    for n in range(3):  # each turn costs ~50 estimated tokens
        await answerer.answer(ask("heavy", n))
    await answerer.answer(ask("other", 9))
    replies = [(e.session_id, e.reply.content) for e in completions.events if isinstance(e, ReplyCompleted)]
    assert replies == [
        ("heavy", "From the LLM."),
        ("heavy", "From the LLM."),
        ("heavy", "From the passages."),
        ("other", "From the LLM."),  # another session has its own budget
    ]
    assert registry.get_sample_value("supportdesk_agent_llm_over_budget_total") == 1
